// Appends sent to followers while the leader is paused with SIGSTOP. The
// followers forward them over a stream to the paused leader, whose TCP
// connection stays open, so only a peer ping (5 s, then a 3 s timeout) would
// show that it stopped responding. Once the others elect a new leader, in
// well under a second with the fast test timings, each follower must give up
// on the old leader and forward the appends to the new one. Each append then
// succeeds long before the peer ping would have failed it with UNAVAILABLE.
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IngestClient } from '../../src/client';
import { connect, startCluster, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';

/** Appends sent to each follower while the leader is paused. */
const appendsPerFollower = 5;
const deadlineMs = 30_000;
/** Bound on each append: an election plus a forward, below the 5 s before a peer's first ping. */
const appendLimitMs = 4_000;

let tc: TestCluster;
const clients: IngestClient[] = [];

test.before(async () => {
  tc = await startCluster({ size: 3 });
});

test.after(async () => {
  for (const client of clients) client.close();
  await tc.close();
});

test('followers forward past a paused leader', async () => {
  const leader = await waitForLeader(tc.cluster);
  const followers = tc.cluster.members.filter((m) => m.id !== leader.id);
  for (const follower of followers) {
    const client = connect(follower.grpc);
    // Opens the client's connection and the follower's forward stream before the pause.
    await client.append(`warm-up-${follower.id}-${Date.now()}`, deadlineMs);
    clients.push(client);
  }

  tc.cluster.pauseMember(leader.id);
  const pausedAtMs = performance.now();
  const outcomes = await Promise.all(
    clients.flatMap((client, i) =>
      Array.from({ length: appendsPerFollower }, (_, k) =>
        client.append(`paused-leader-${followers[i]!.id}-${k}-${Date.now()}`, deadlineMs).then(
          (result) => ({ follower: followers[i]!.id, ms: performance.now() - pausedAtMs, index: result.index, error: '' }),
          (err: Error) => ({ follower: followers[i]!.id, ms: performance.now() - pausedAtMs, index: 0, error: err.message }),
        ),
      ),
    ),
  );
  tc.cluster.resumeMember(leader.id);

  for (const outcome of outcomes) {
    assert.is(outcome.error, '', `append on ${outcome.follower} failed after ${Math.round(outcome.ms)} ms`);
    assert.ok(outcome.ms < appendLimitMs, `append on ${outcome.follower} took ${Math.round(outcome.ms)} ms, limit ${appendLimitMs} ms`);
  }
  const slowestMs = Math.round(Math.max(...outcomes.map((o) => o.ms)));
  console.log(`every append on the followers succeeded within ${slowestMs} ms of pausing ${leader.id}`);

  const applied = Math.max(...outcomes.map((o) => o.index));
  const synced = await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), applied);
  const counts = synced.map((s) => s.messageCount);
  assert.equal(counts, [counts[0], counts[0], counts[0]], 'every member stores the same messages after the resume');
});

test.run();
