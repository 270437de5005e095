// A member's state database is deleted or damaged while the member is down.
// On restart it must rebuild the state from its newest local snapshot and
// replay its Raft log, ending with the same digest as the others. Its
// snapshots may be gone too while its log no longer starts at index 1. Then it
// cannot rebuild alone, so it must refuse to start with a message naming the
// folder. Once a snapshot copied from another member is in place, it starts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listSnapshots, snapshotsDirectory } from '../../src/storage/snapshot-files';
import { loadReplogPackage } from '../../src/client/proto';
import { readCurrent, stateDirectory } from '../../src/storage/state-dir';
import { appendMany, connect, fetchStatus, waitFor, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
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

/** Appends a round of messages, then SIGKILLs a follower that has a snapshot; returns its id and the acknowledged appends. */
async function loadAndKillFollower(): Promise<{ id: string; acknowledged: Map<string, number> }> {
  const client = connect(tc.cluster.members.map((m) => m.grpc).join(','));
  const load = await appendMany(client, `round-${round++}-`, appendsPerRound, 32);
  client.close();
  assert.is(load.failed, 0, 'appends succeed before the damage');
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  await waitFor(`a snapshot on ${follower.id}`, async () => listSnapshots(snapshotsDirectory(follower.dataDir)).length > 0);
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

test('deleted state database is rebuilt from snapshot and log', async () => {
  const { id, acknowledged } = await loadAndKillFollower();
  fs.rmSync(stateDirectory(tc.cluster.member(id).dataDir), { recursive: true, force: true });
  await restartAndCompare(id, acknowledged);
  assert.ok(logOf(id).includes('state database restored from the newest local snapshot'), `${id} logs the rebuild`);
});

test('damaged state database is rebuilt from snapshot and log', async () => {
  const { id, acknowledged } = await loadAndKillFollower();
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
  const { id, acknowledged } = await loadAndKillFollower();
  const member = tc.cluster.member(id);
  fs.rmSync(stateDirectory(member.dataDir), { recursive: true, force: true });
  fs.rmSync(snapshotsDirectory(member.dataDir), { recursive: true, force: true });

  await restartAndCompare(id, acknowledged);
  assert.ok(logOf(id).includes('fetched snapshot from a peer'), `${id} logs that it fetched a peer's snapshot`);
  assert.ok(listSnapshots(snapshotsDirectory(member.dataDir)).length > 0, `${id} keeps the fetched snapshot`);
});

interface FetchOutcome {
  readonly code: number;
  readonly snapshotIndex: number;
  readonly ms: number;
}

/** Calls Peer.FetchSnapshot on a member directly; returns the status code and the index of the snapshot sent, if any. */
function fetchSnapshot(address: string, minIndex: number): Promise<FetchOutcome> {
  const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
  const client = new Peer(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    FetchSnapshot(request: object, options: grpc.CallOptions): grpc.ClientReadableStream<{ index: number }>;
  };
  const started = Date.now();
  return new Promise((resolve) => {
    let snapshotIndex = 0;
    const call = client.FetchSnapshot({ from: 'test', minIndex }, { deadline: Date.now() + 20_000 });
    call.on('data', (chunk: { index: number }) => {
      snapshotIndex ||= Number(chunk.index);
    });
    call.on('status', (status: grpc.StatusObject) => {
      client.close();
      resolve({ code: status.code, snapshotIndex, ms: Date.now() - started });
    });
    call.on('error', () => undefined);
  });
}

test('FetchSnapshot below minIndex fails fast', async () => {
  const client = connect(tc.cluster.members.map((m) => m.grpc).join(','));
  const load = await appendMany(client, `round-${round++}-`, 20, 4);
  client.close();
  assert.is(load.failed, 0, 'appends succeed');
  const leader = await waitForLeader(tc.cluster);
  const peer = tc.cluster.member(leader.id);
  const before = (await fetchStatus(peer.http))!;
  assert.ok(before.appliedIndex > before.snapshotIndex, 'entries applied since the last snapshot');
  const minIndex = before.snapshotIndex + 1;

  const rejected = await fetchSnapshot(peer.grpc, minIndex);
  assert.is(rejected.code, grpc.status.FAILED_PRECONDITION, 'the call ends with FAILED_PRECONDITION');
  // A stream closed without a status would leave the caller waiting for its deadline.
  assert.ok(rejected.ms < 5000, `the rejection came in ${rejected.ms} ms`);

  await waitFor(`a snapshot at or above ${minIndex} on ${peer.id}`, async () => ((await fetchStatus(peer.http))?.snapshotIndex ?? 0) >= minIndex);
  const sent = await fetchSnapshot(peer.grpc, minIndex);
  assert.is(sent.code, grpc.status.OK, 'the retry succeeds');
  assert.ok(sent.snapshotIndex >= minIndex, `the snapshot sent (${sent.snapshotIndex}) reaches ${minIndex}`);
});

test.run();
