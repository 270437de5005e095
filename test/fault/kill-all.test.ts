// Every member is SIGKILLed at the same moment under load, and two of them
// come back with damaged WAL files (Raft log and state database): one with
// garbage after the last frame, one with the last frame torn in half. All restart; nothing acknowledged may
// be lost, the torn tail must be dropped rather than stop the member, and the
// members must end identical.
//
// The member whose last transaction is torn lost entries it had fsync'd and
// perhaps acknowledged to the leader, which a real torn write cannot do. So it
// restarts only after the two others have elected a leader: any entry
// committed with its help is also on one of those two, and the election
// restriction puts it in the new leader's log.
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { raftLogFileName } from '../../src/storage/raft-log';
import { readCurrent, stateDirectory } from '../../src/storage/state-dir';
import { connect, fetchStatus, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
import { after, missingOn, recordAppends, startFaultCluster, startWatchdog } from './fault-harness';
import { appendGarbage, tearLastFrame } from './wal-damage';

/** Load before the kill, and how long appends go on after it, in milliseconds. */
const loadBeforeKillMs = 2000;
const loadAfterKillMs = 500;
const concurrency = 32;
const garbageBytes = 5000;
const fileLimitMs = 60_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startFaultCluster({ haproxy: true });
  startWatchdog('kill-all.test', fileLimitMs, () => tc.cluster.processes.forEach((p) => p.kill('SIGKILL')));
});

test.after(async () => {
  await tc.close();
});

/** Returns the WAL files of member `id`: its Raft log's and its live state database's. */
function walFilesOf(id: string): string[] {
  const dataDir = tc.cluster.member(id).dataDir;
  const stateDir = stateDirectory(dataDir);
  return [path.join(dataDir, `${raftLogFileName}-wal`), path.join(stateDir, `${readCurrent(stateDir)}-wal`)];
}

test('all members killed at once, then torn WAL tails', async () => {
  const client = connect(tc.target);
  const load = recordAppends(client, 'all-', { concurrency, done: after(loadBeforeKillMs + loadAfterKillMs), deadlineMs: 2000 });
  await new Promise((resolve) => setTimeout(resolve, loadBeforeKillMs));
  await Promise.all(tc.cluster.members.map((m) => tc.cluster.stopMember(m.id, 'SIGKILL')));
  const { acknowledged } = await load;
  assert.ok(acknowledged.size > 0, 'appends were acknowledged before the kill');

  const [intact, garbled, torn] = tc.cluster.members.map((m) => m.id) as [string, string, string];
  for (const file of walFilesOf(garbled)) appendGarbage(file, garbageBytes);
  for (const file of walFilesOf(torn)) {
    assert.ok(tearLastFrame(file) > 0, `${file} had a last frame to tear`);
  }

  tc.cluster.startMember(intact);
  tc.cluster.startMember(garbled);
  await waitForLeader(tc.cluster, [intact, garbled]);
  tc.cluster.startMember(torn);
  const lastAcknowledged = Math.max(...acknowledged.values());
  const synced = await waitInSync(tc.cluster, [intact, garbled, torn], lastAcknowledged);
  assert.ok(synced[0]!.messageCount >= acknowledged.size, 'no member stores fewer messages than were acknowledged');

  for (const m of tc.cluster.members) {
    assert.equal(await missingOn(acknowledged, m.grpc), [], `${m.id} stores every acknowledged append`);
    assert.ok(await fetchStatus(m.http), `${m.id} is running`);
  }
  const more = await recordAppends(client, 'after-', { concurrency: 8, done: after(500), deadlineMs: 2000 });
  client.close();
  assert.is(more.errors.size, 0, `appends after the restart succeed: ${JSON.stringify([...more.errors])}`);
});

test.run();
