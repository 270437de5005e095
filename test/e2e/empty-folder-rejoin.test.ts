// A follower restarted on an empty data folder while the same leader goes on
// leading: it gets the log, or a snapshot once the leader compacted, and ends
// identical to the others with every acknowledged message. With --rejoin it
// withholds its votes until then, so it cannot elect a member that lacks them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejoinMarkerFileName } from '../../src/node/membership-file';
import { appendMany, connect, readAll, sleep, startCluster, statuses, waitFor, waitForLeader, waitInSync, type TestCluster } from './harness';

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

test('rejoined member elects no stale one', async () => {
  tc = await startCluster();
  const current = tc;
  const leader = await waitForLeader(current.cluster);
  const [stale, rejoined] = current.cluster.members.filter((m) => m.id !== leader.id);
  const client = connect(current.cluster.member(leader.id).grpc);
  // The stale member misses appends that the leader and the other follower store.
  await current.cluster.stopMember(stale!.id, 'SIGKILL');
  const missed = await appendMany(client, 'missed-', 300, 16);
  client.close();
  assert.is(missed.failed, 0);

  // The other follower loses its data but its membership record, as a first
  // start that ended before raft.db existed leaves it, and the leader goes down too.
  await current.cluster.stopMember(rejoined!.id, 'SIGKILL');
  for (const name of fs.readdirSync(rejoined!.dataDir)) {
    if (name !== 'membership.json') fs.rmSync(path.join(rejoined!.dataDir, name), { recursive: true, force: true });
  }
  await current.cluster.stopMember(leader.id, 'SIGKILL');
  current.cluster.startMember(stale!.id);
  current.cluster.startMember(rejoined!.id, ['--rejoin']);
  await waitFor('the rejoin marker written', async () => fs.existsSync(path.join(rejoined!.dataDir, rejoinMarkerFileName)));

  // Ten election timeouts of the test timing (300 ms) without a leader.
  for (let i = 0; i < 15; i++) {
    await sleep(200);
    const roles = [...(await statuses(current.cluster, [stale!.id, rejoined!.id])).values()].map((s) => s.role);
    assert.not.ok(roles.includes('leader'), `no leader while the appends are only on the stopped leader: ${roles.join(', ')}`);
  }

  current.cluster.startMember(leader.id);
  const ids = current.cluster.members.map((m) => m.id);
  await waitInSync(current.cluster, ids, 0, 20_000);
  for (const m of current.cluster.members) {
    const stored = new Map((await readAll(m.grpc)).map((message) => [message.valueset, message.index]));
    for (const [valueset, index] of missed.acknowledged) assert.is(stored.get(valueset), index, `${m.id} stores ${valueset} at ${index}`);
  }
  await waitFor('the rejoin marker deleted', async () => !fs.existsSync(path.join(rejoined!.dataDir, rejoinMarkerFileName)));
  const log = fs.readFileSync(rejoined!.logFile, 'utf8');
  assert.match(log, /withholding votes until a leader has caught this member up/);
  assert.match(log, /caught up after losing its data, voting again/);

  const rejoinedLog = fs.readFileSync(rejoined!.logFile, 'utf8');
  assert.not.match(rejoinedLog, /ignored --rejoin/, 'a folder without raft.db rejoins');

  // On a folder with data the flag changes nothing.
  await current.cluster.stopMember(stale!.id, 'SIGKILL');
  current.cluster.startMember(stale!.id, ['--rejoin']);
  await waitFor('the warning about --rejoin', async () => fs.readFileSync(stale!.logFile, 'utf8').includes('ignored --rejoin'));
  assert.not.ok(fs.existsSync(path.join(stale!.dataDir, rejoinMarkerFileName)), 'no marker on a folder with data');
});

test.run();
