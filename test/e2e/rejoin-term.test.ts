// A member cut off from the others for many election timeouts, then back:
// pre-vote keeps it from raising its term, so the healthy leader stays.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePorts } from '../../src/cluster/local-cluster';
import { appendMany, connect, fetchStatus, sleep, startCluster, waitForLeader, waitInSync, type TestCluster } from './harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster();
});

test.after(async () => {
  await tc.close();
});

test('cut-off member rejoins without raising the term', async () => {
  const leader = await waitForLeader(tc.cluster);
  const member = tc.cluster.members.find((m) => m.id !== leader.id)!;
  await tc.cluster.stopMember(member.id, 'SIGTERM');

  // Restart it unreachable both ways: it listens on free ports that no peer
  // dials, and it dials peers at ports where nothing listens.
  const cutOffPeers = tc.cluster.members
    .map((m, i) => `${m.id}=${m.id === member.id ? member.grpc : `127.0.0.1:${i + 1}`}`)
    .join(',');
  const [grpcPort, raftPort] = await freePorts(2);
  tc.cluster.startMember(member.id, ['--grpc', `127.0.0.1:${grpcPort}`, '--raft', `127.0.0.1:${raftPort}`, '--peers', cutOffPeers]);
  const client = connect(tc.target);
  const whileCut = await appendMany(client, 'cut-', 300, 8);
  assert.is(whileCut.failed, 0);
  await sleep(3000); // about ten election timeouts of 300 ms
  const isolated = await fetchStatus(member.http);
  assert.ok(isolated, 'the cut-off member still serves /status');
  assert.is(isolated!.term, leader.term, 'pre-vote keeps the cut-off member at the old term');
  assert.ok(['follower', 'precandidate'].includes(isolated!.role), `role is ${isolated!.role}`);

  await tc.cluster.stopMember(member.id, 'SIGTERM');
  tc.cluster.startMember(member.id);
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), 300);
  const after = await waitForLeader(tc.cluster);
  assert.is(after.id, leader.id, 'the healthy leader keeps leading');
  assert.is(after.term, leader.term, 'the term did not change');
  client.close();
});

test.run();
