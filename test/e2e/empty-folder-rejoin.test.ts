// A follower restarted on an empty data folder while the same leader goes on
// leading: it gets the log, or a snapshot once the leader compacted, and ends
// identical to the others with every acknowledged message.
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendMany, connect, readAll, startCluster, waitForLeader, waitInSync, type TestCluster } from './harness';

let tc: TestCluster | null = null;

test.after.each(async () => {
  await tc?.close();
  tc = null;
});

/** Kills the follower, empties its data folder, restarts it and checks that it catches up under the same leader. */
async function rejoinEmpty(current: TestCluster): Promise<void> {
  const leader = await waitForLeader(current.cluster);
  const follower = current.cluster.members.find((m) => m.id !== leader.id)!;
  const client = connect(current.target);
  const before = await appendMany(client, 'before-', 600, 16);
  assert.is(before.failed, 0, 'appends before the restart');

  await current.cluster.stopMember(follower.id, 'SIGKILL');
  fs.rmSync(follower.dataDir, { recursive: true, force: true });
  current.cluster.startMember(follower.id);
  const after = await appendMany(client, 'after-', 300, 16);
  client.close();
  assert.is(after.failed, 0, 'appends after the restart');

  const ids = current.cluster.members.map((m) => m.id);
  const synced = await waitInSync(current.cluster, ids, 0, 20_000);
  assert.is(synced[0]!.messageCount, 900);
  const leaderNow = await waitForLeader(current.cluster);
  assert.is(leaderNow.id, leader.id, 'the same member leads');
  assert.is(leaderNow.term, leader.term, 'in the same term');
  const stored = new Map((await readAll(follower.grpc)).map((m) => [m.valueset, m.index]));
  for (const [valueset, index] of [...before.acknowledged, ...after.acknowledged]) {
    assert.is(stored.get(valueset), index, `${follower.id} stores ${valueset} at ${index}`);
  }
}

test('empty follower catches up from the log', async () => {
  tc = await startCluster();
  await rejoinEmpty(tc);
});

test('empty follower catches up from a snapshot', async () => {
  tc = await startCluster({ memberArgs: ['--snapshot-threshold', '200', '--snapshot-keep-entries', '50'] });
  await rejoinEmpty(tc);
});

test.run();
