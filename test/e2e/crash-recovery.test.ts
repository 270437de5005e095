// kill -9 of a follower and of the leader under load, with real member
// processes: no acknowledged message is lost and the members end identical.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendMany, connect, readAll, sleep, startCluster, statuses, waitForLeader, waitInSync, type TestCluster } from './harness';

let tc: TestCluster;

test.before.each(async () => {
  tc = await startCluster({ haproxy: true });
});

test.after.each(async () => {
  await tc.close();
});

async function assertAllStored(acknowledged: Map<string, number>, grpc: string, id: string): Promise<void> {
  const stored = new Map((await readAll(grpc)).map((m) => [m.valueset, m.index]));
  for (const [valueset, index] of acknowledged) {
    assert.is(stored.get(valueset), index, `${id} stores acknowledged ${valueset} at index ${index}`);
  }
}

test('killed follower catches up to the same digest', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const client = connect(tc.target);
  const before = await appendMany(client, 'before-', 500, 16);
  await tc.cluster.stopMember(follower.id, 'SIGKILL');
  const during = await appendMany(client, 'during-', 1500, 32);
  assert.is(during.failed, 0, 'a majority keeps accepting appends with one member down');
  tc.cluster.startMember(follower.id);
  const after = await appendMany(client, 'after-', 500, 16);
  client.close();

  const ids = tc.cluster.members.map((m) => m.id);
  const synced = await waitInSync(tc.cluster, ids);
  assert.is(synced[0]!.messageCount, 2500 - before.failed - after.failed);
  for (const acked of [before, during, after]) await assertAllStored(acked.acknowledged, follower.grpc, follower.id);
});

test('killed leader is replaced and no acknowledged append is lost', async () => {
  const leader = await waitForLeader(tc.cluster);
  const client = connect(tc.target);
  const load = appendMany(client, 'load-', 100_000, 32, Date.now() + 4000);
  await sleep(1500);
  await tc.cluster.stopMember(leader.id, 'SIGKILL');
  const result = await load;
  const survivors = tc.cluster.members.filter((m) => m.id !== leader.id).map((m) => m.id);
  const newLeader = await waitForLeader(tc.cluster, survivors);
  assert.is.not(newLeader.id, leader.id, 'a surviving member leads');
  assert.ok(newLeader.term > leader.term, 'the new leader has a higher term');

  const more = await appendMany(client, 'more-', 300, 16);
  assert.is(more.failed, 0, 'appends go on under the new leader');
  client.close();

  tc.cluster.startMember(leader.id);
  const ids = tc.cluster.members.map((m) => m.id);
  await waitInSync(tc.cluster, ids);
  for (const m of tc.cluster.members) {
    await assertAllStored(result.acknowledged, m.grpc, m.id);
    await assertAllStored(more.acknowledged, m.grpc, m.id);
  }
  const final = await statuses(tc.cluster);
  assert.is(final.size, 3);
});

test('SIGTERM stops a member cleanly and it resumes from disk', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const client = connect(tc.target);
  const first = await appendMany(client, 'term-', 500, 16);
  const code = await tc.cluster.stopMember(follower.id, 'SIGTERM');
  assert.is(code, 0, 'a member exits 0 after SIGTERM');
  tc.cluster.startMember(follower.id);
  client.close();
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), first.acknowledged.size);
  await assertAllStored(first.acknowledged, follower.grpc, follower.id);
});

test.run();
