// Snapshots with real members: a follower that was down while several
// snapshot thresholds' worth of entries committed catches up by
// InstallSnapshot and ends with the same digest; all members restart from
// their snapshots.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { appendMany, connect, readAll, startCluster, waitFor, waitForLeader, waitInSync, type TestCluster } from './harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ memberArgs: ['--snapshot-threshold', '500', '--snapshot-keep-entries', '100'] });
});

test.after(async () => {
  await tc.close();
});

test('follower far behind catches up by snapshot', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const client = connect(tc.target);
  const before = await appendMany(client, 'early-', 300, 16);
  await tc.cluster.stopMember(follower.id, 'SIGKILL');
  const during = await appendMany(client, 'missed-', 3000, 64);
  assert.is(during.failed, 0);
  tc.cluster.startMember(follower.id);
  const ids = tc.cluster.members.map((m) => m.id);
  const synced = await waitInSync(tc.cluster, ids, 3300);
  assert.ok(synced.every((s) => s.snapshotIndex > 0), 'every member took or installed a snapshot');
  const stored = new Map((await readAll(follower.grpc)).map((m) => [m.valueset, m.index]));
  for (const acked of [before, during]) {
    for (const [valueset, index] of acked.acknowledged) assert.is(stored.get(valueset), index, `${valueset} at ${index}`);
  }
  // pino writes asynchronously, so the line may trail the state /status shows.
  const installed = await waitFor('the install log line', async () =>
    /installed snapshot from leader/.test(fs.readFileSync(follower.logFile, 'utf8')),
  5000).catch(() => false);
  assert.ok(installed, 'the follower installed a snapshot rather than replaying');
  client.close();
});

test('all members restart from their snapshots', async () => {
  const before = await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id));
  await tc.cluster.stopAll('SIGKILL');
  tc.cluster.startAll();
  await waitForLeader(tc.cluster);
  const after = await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), before[0]!.appliedIndex);
  assert.is(after[0]!.messageCount, before[0]!.messageCount);
  const client = connect(tc.target);
  const more = await appendMany(client, 'after-restart-', 200, 16);
  assert.is(more.failed, 0, 'the restarted cluster accepts appends');
  client.close();
});

test.run();
