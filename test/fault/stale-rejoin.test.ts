// The leader dies at the moment a member with an older term and a shorter log
// comes back: the stale member cannot win (its log is behind), and it must not
// keep the up-to-date member from winning. A leader must be elected within a
// few election timeouts of the stale member being up.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendMany, connect, fetchStatus, waitFor, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
import { startFaultCluster, startWatchdog } from './fault-harness';

/** The election timeout of fastTimingArgs; actual timeouts are drawn from [T, 2T). */
const electionTimeoutMs = 300;
/** "A few election timeouts": the bound on electing a leader once the stale member serves. */
const electionBoundMs = 8 * electionTimeoutMs;
const rounds = 2;
const fileLimitMs = 90_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startFaultCluster();
  startWatchdog('stale-rejoin.test', fileLimitMs, () => tc.cluster.processes.forEach((p) => p.kill('SIGKILL')));
});

test.after(async () => {
  await tc.close();
});

/** Restarts the leader among `ids` until the term has risen above `term`; returns the new leader. */
async function raiseTerm(ids: readonly string[], term: number): Promise<string> {
  for (;;) {
    const leader = await waitForLeader(tc.cluster, ids);
    if (leader.term > term) return leader.id;
    await tc.cluster.stopMember(leader.id, 'SIGKILL');
    tc.cluster.startMember(leader.id);
  }
}

async function staleRejoinRound(round: number): Promise<void> {
  const first = await waitForLeader(tc.cluster);
  const stale = tc.cluster.members.find((m) => m.id !== first.id)!;
  const others = tc.cluster.members.filter((m) => m.id !== stale.id).map((m) => m.id);
  await tc.cluster.stopMember(stale.id, 'SIGTERM');

  // Without the stale member the others raise the term and append entries it lacks.
  const client = connect(tc.cluster.members.filter((m) => m.id !== stale.id).map((m) => m.grpc).join(','));
  const leaderId = await raiseTerm(others, first.term);
  const missed = await appendMany(client, `missed-${round}-`, 300, 16);
  client.close();
  assert.is(missed.failed, 0, 'the two members accept appends');
  const before = await fetchStatus(tc.cluster.member(leaderId).http);

  // The leader dies as the stale member comes back.
  await tc.cluster.stopMember(leaderId, 'SIGKILL');
  tc.cluster.startMember(stale.id);
  const pair = others.filter((id) => id !== leaderId).concat(stale.id);
  await waitFor(`${stale.id} serving /status`, () => fetchStatus(stale.http));
  const servingAt = performance.now();
  const elected = await waitForLeader(tc.cluster, pair, electionBoundMs + 5000);
  const electionMs = performance.now() - servingAt;
  console.log(`round ${round}: ${elected.id} elected at term ${elected.term} ${Math.round(electionMs)} ms after ${stale.id} came back`);

  assert.is.not(elected.id, stale.id, 'the member with the shorter log does not win');
  assert.ok(elected.term > before!.term, 'the new leader has a higher term than the dead one');
  assert.ok(electionMs < electionBoundMs, `a leader within ${electionBoundMs} ms, took ${Math.round(electionMs)} ms`);

  tc.cluster.startMember(leaderId);
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), before!.commitIndex);
}

test('stale member rejoins as the leader dies', async () => {
  for (let round = 0; round < rounds; round++) await staleRejoinRound(round);
});

test.run();
