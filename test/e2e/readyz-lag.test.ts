// GET /readyz?lag=N is ready with up to N committed entries left to apply,
// for load balancers that should not take a member out for a short lag, and
// rejects an invalid N with 400. A follower that restarts far behind learns
// the leader's commit index from the first heartbeat, so it is not ready
// until it has caught up to within N entries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IngestClient } from '../../src/client';
import { appendMany, connect, fetchStatus, startCluster, waitFor, waitForLeader, type TestCluster } from './harness';

let tc: TestCluster;
let client: IngestClient | undefined;

test.after(async () => {
  client?.close();
  await tc?.close();
});

test('readyz takes an entry lag', async () => {
  tc = await startCluster({ size: 3 });
  await waitForLeader(tc.cluster);
  const http = tc.cluster.members[0]!.http;
  const cases: [string, number][] = [
    ['/readyz?lag=0', 200],
    ['/readyz?lag=1000', 200],
    ['/readyz?lag=1000000000', 200],
    ['/readyz?lag=1000000001', 400],
    ['/readyz?lag=-1', 400],
    ['/readyz?lag=ten', 400],
    ['/readyz?lag=', 400],
  ];
  await waitFor('member 1 ready', async () => (await fetch(`http://${http}/readyz`)).status === 200);
  for (const [url, status] of cases) {
    const response = await fetch(`http://${http}${url}`);
    const body = (await response.json()) as { error?: string };
    assert.is(response.status, status, `${url}: ${JSON.stringify(body)}`);
    if (status === 400) assert.match(body.error ?? '', /^invalid lag/, `${url} names the value`);
  }
});

test('restarted follower not ready while behind', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  await tc.cluster.stopMember(follower.id, 'SIGKILL');
  client = connect(tc.cluster.member(leader.id).grpc);
  const load = await appendMany(client, 'behind-', 3000, 64);
  assert.is(load.acknowledged.size, 3000, 'appends without the follower succeed');
  const leaderCommit = (await fetchStatus(tc.cluster.member(leader.id).http))!.commitIndex;

  tc.cluster.startMember(follower.id);
  const lag = 100;
  const readyAt = await waitFor('the restarted follower ready', async () => {
    const response = await fetch(`http://${follower.http}/readyz?lag=${lag}`).catch(() => null);
    if (response?.status !== 200) return null;
    return (await fetchStatus(follower.http))!.appliedIndex;
  });
  assert.ok(readyAt >= leaderCommit - lag, `ready at applied index ${readyAt}, the leader's commit index is ${leaderCommit}`);
});

test.run();
