// A member's state database is deleted or damaged while the member is down.
// On restart it must rebuild the state from a snapshot and replay its Raft
// log, ending with the same digest as the others. A member saves a snapshot
// file only for a peer that needs one, so it may have one locally or not.
// Without one, and with a log that no longer starts at index 1, it fetches a
// snapshot from a peer before it serves.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listSnapshots, snapshotsDirectory } from '../../src/storage/snapshot-files';
import { readCurrent, stateDirectory } from '../../src/storage/state-dir';
import { appendMany, connect, fetchPeerSnapshot, fetchStatus, saveSnapshotFile, waitFor, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
import { exitOf, missingOn, startFaultCluster, startWatchdog } from './fault-harness';

/** Snapshots every 300 entries, keeping 100 below each, so the log start moves up quickly. */
const memberArgs = ['--snapshot-threshold', '300', '--snapshot-keep-entries', '100'];
const appendsPerRound = 1200;
const fileLimitMs = 90_000;

let tc: TestCluster;
let round = 0;

test.before(async () => {
  tc = await startFaultCluster({ memberArgs });
  startWatchdog('state-rebuild.test', fileLimitMs, () => tc.cluster.processes.forEach((p) => p.kill('SIGKILL')));
});

test.after(async () => {
  await tc.close();
});

/**
 * Appends a round of messages, then SIGKILLs a follower whose log was
 * compacted, and returns its id and the acknowledged appends. With `snapshotFile`,
 * the follower first saves a snapshot file, as it does for a peer that needs one.
 */
async function loadAndKillFollower(snapshotFile: boolean): Promise<{ id: string; acknowledged: Map<string, number> }> {
  const client = connect(tc.cluster.members.map((m) => m.grpc).join(','));
  const load = await appendMany(client, `round-${round++}-`, appendsPerRound, 32);
  client.close();
  assert.is(load.failed, 0, 'appends succeed before the damage');
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const compacted = await waitFor(`a snapshot on ${follower.id}`, async () => {
    const status = await fetchStatus(follower.http);
    return status !== null && status.snapshotIndex > 0 ? status : null;
  });
  if (snapshotFile) await saveSnapshotFile(follower.grpc, compacted.snapshotIndex);
  await tc.cluster.stopMember(follower.id, 'SIGKILL');
  return { id: follower.id, acknowledged: load.acknowledged };
}

async function restartAndCompare(id: string, acknowledged: Map<string, number>): Promise<void> {
  tc.cluster.startMember(id);
  const ids = tc.cluster.members.map((m) => m.id);
  const synced = await waitInSync(tc.cluster, ids, Math.max(...acknowledged.values()));
  assert.ok(synced.every((s) => s.digest === synced[0]!.digest), 'every member has the same digest');
  assert.equal(await missingOn(acknowledged, tc.cluster.member(id).grpc), [], `${id} stores every acknowledged append`);
}

function logOf(id: string): string {
  return fs.readFileSync(tc.cluster.member(id).logFile, 'utf8');
}

test('deleted state rebuilt from local snapshot', async () => {
  const { id, acknowledged } = await loadAndKillFollower(true);
  fs.rmSync(stateDirectory(tc.cluster.member(id).dataDir), { recursive: true, force: true });
  await restartAndCompare(id, acknowledged);
  assert.ok(logOf(id).includes('state database restored from the newest local snapshot'), `${id} logs the rebuild`);
});

test('damaged state rebuilt from local snapshot', async () => {
  const { id, acknowledged } = await loadAndKillFollower(true);
  const stateDir = stateDirectory(tc.cluster.member(id).dataDir);
  const file = path.join(stateDir, readCurrent(stateDir)!);
  // Garbage over the whole file; the WAL goes too, or SQLite would read the
  // newest pages from it and never notice.
  fs.writeFileSync(file, Buffer.alloc(fs.statSync(file).size, 0xa5));
  fs.rmSync(`${file}-wal`, { force: true });
  fs.rmSync(`${file}-shm`, { force: true });
  await restartAndCompare(id, acknowledged);
  assert.ok(logOf(id).includes('state database is damaged'), `${id} logs that its state database is damaged`);
});

test('state and snapshots lost: fetches a snapshot from a peer', async () => {
  const { id, acknowledged } = await loadAndKillFollower(false);
  const member = tc.cluster.member(id);
  fs.rmSync(stateDirectory(member.dataDir), { recursive: true, force: true });
  fs.rmSync(snapshotsDirectory(member.dataDir), { recursive: true, force: true });

  await restartAndCompare(id, acknowledged);
  assert.ok(logOf(id).includes('fetched snapshot from a peer'), `${id} logs that it fetched a peer's snapshot`);
  assert.ok(listSnapshots(snapshotsDirectory(member.dataDir)).length > 0, `${id} keeps the fetched snapshot`);
});

test('FetchSnapshot below minIndex fails fast', async () => {
  const client = connect(tc.cluster.members.map((m) => m.grpc).join(','));
  const load = await appendMany(client, `round-${round++}-`, 20, 4);
  client.close();
  assert.is(load.failed, 0, 'appends succeed');
  const leader = await waitForLeader(tc.cluster);
  const peer = tc.cluster.member(leader.id);
  const before = (await fetchStatus(peer.http))!;
  // The appends above came after any snapshot file the peer saved so far.
  const minIndex = before.appliedIndex;

  const rejected = await fetchPeerSnapshot(peer.grpc, minIndex);
  assert.is(rejected.code, grpc.status.FAILED_PRECONDITION, 'the call ends with FAILED_PRECONDITION');
  // A stream closed without a status would leave the caller waiting for its deadline.
  assert.ok(rejected.ms < 5000, `the rejection came in ${rejected.ms} ms`);

  const sent = await waitFor(`a snapshot file at or above ${minIndex} on ${peer.id}`, async () => {
    const outcome = await fetchPeerSnapshot(peer.grpc, minIndex);
    return outcome.code === grpc.status.OK ? outcome : null;
  });
  assert.ok(sent.snapshotIndex >= minIndex, `the snapshot sent (${sent.snapshotIndex}) reaches ${minIndex}`);
});

test.run();
