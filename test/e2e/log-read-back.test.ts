// Catch-up from the Raft log with real members, when the leader no longer
// keeps the missed entries in memory. The core keeps the data of the newest
// 8,192 to 10,240 applied entries only, so a follower that missed 12,000 gets
// the older ones read back from the leader's raft.db. No snapshot is taken.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendMany, connect, readAll, startCluster, waitForLeader, waitInSync, type TestCluster } from './harness';

/** More than the entries whose data the leader's core keeps in memory. */
const missedCount = 12_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ memberArgs: ['--snapshot-threshold', '1000000'] });
});

test.after(async () => {
  await tc.close();
});

test('follower catches up from raft.db', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const client = connect(tc.target);
  await tc.cluster.stopMember(follower.id, 'SIGKILL');
  const missed = await appendMany(client, 'missed-', missedCount, 128);
  assert.is(missed.failed, 0);
  tc.cluster.startMember(follower.id);
  const ids = tc.cluster.members.map((m) => m.id);
  const synced = await waitInSync(tc.cluster, ids, missedCount, 60_000);
  assert.ok(synced.every((s) => s.snapshotIndex === 0), 'no member took or installed a snapshot');
  const stored = new Map((await readAll(follower.grpc)).map((m) => [m.valueset, m.index]));
  assert.is(stored.size, missedCount);
  for (const [valueset, index] of missed.acknowledged) assert.is(stored.get(valueset), index, `${valueset} at ${index}`);
  client.close();
});

test.run();
