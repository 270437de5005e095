// Log compaction with real members under continuous load. AppendStream
// traffic keeps flowing while every member takes several snapshots, and no
// append fails. The log start moves up, the log above the snapshot stays
// short, and the members end with the same digest.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IngestClient } from '../../src/client';
import type { MemberStatus } from '../../src/node/member';
import { connect, readAll, sleep, startCluster, statuses, waitInSync, type TestCluster } from './harness';

const snapshotThresholdEntries = 300;
const snapshotKeepEntries = 50;
const messageCount = 6000;
const streamCount = 3;
const streamWindowSize = 64;
/**
 * Bound on lastLogIndex - snapshotIndex: one threshold, plus the entries
 * applied while a snapshot is written, plus the appends in flight. A log that
 * is never compacted passes it after a third of the load.
 */
const entriesAboveSnapshotMax = 2000;
const statusPollMs = 100;

let tc: TestCluster;
let acknowledged = new Map<string, number>();

test.before(async () => {
  tc = await startCluster({
    memberArgs: ['--snapshot-threshold', String(snapshotThresholdEntries), '--snapshot-keep-entries', String(snapshotKeepEntries)],
  });
});

test.after(async () => {
  await tc.close();
});

interface StreamLoadResult {
  readonly acknowledged: Map<string, number>;
  readonly failures: string[];
}

/** Appends `count` valuesets over `streamCount` AppendStream calls and waits for every reply. */
async function streamLoad(client: IngestClient, prefix: string, count: number): Promise<StreamLoadResult> {
  const acknowledged = new Map<string, number>();
  const failures: string[] = [];
  const streams = Array.from({ length: streamCount }, () => client.appendStream({ windowSize: streamWindowSize }));
  const replies: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const valueset = `${prefix}${i}`;
    const reply = streams[i % streamCount]!.append(valueset).then(
      (result) => void acknowledged.set(valueset, result.index),
      (err: Error) => void failures.push(`${valueset}: ${err.message}`),
    );
    replies.push(reply);
  }
  await Promise.all(replies);
  await Promise.all(streams.map((s) => s.close()));
  return { acknowledged, failures };
}

interface CompactionObservations {
  /** Every distinct snapshotIndex seen, per member, in the order seen. */
  readonly snapshotIndexes: Map<string, number[]>;
  /** Largest lastLogIndex - snapshotIndex seen, per member. */
  readonly entriesAboveSnapshot: Map<string, number>;
}

/** Polls every member's /status until `done` settles. */
async function observeCompaction(done: Promise<unknown>): Promise<CompactionObservations> {
  const observations: CompactionObservations = { snapshotIndexes: new Map(), entriesAboveSnapshot: new Map() };
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    for (const status of (await statuses(tc.cluster)).values()) record(observations, status);
    await sleep(statusPollMs);
  }
  return observations;
}

function record(observations: CompactionObservations, status: MemberStatus): void {
  const seen = observations.snapshotIndexes.get(status.id) ?? [];
  if (seen[seen.length - 1] !== status.snapshotIndex) seen.push(status.snapshotIndex);
  observations.snapshotIndexes.set(status.id, seen);
  const above = status.lastLogIndex - status.snapshotIndex;
  observations.entriesAboveSnapshot.set(status.id, Math.max(above, observations.entriesAboveSnapshot.get(status.id) ?? 0));
}

async function metricValue(httpAddress: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${httpAddress}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

/** Log start indexes from the member's 'took snapshot and compacted the log' lines, in order. */
function loggedLogStarts(logFile: string): number[] {
  const starts: number[] = [];
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('took snapshot and compacted the log')) continue;
    starts.push((JSON.parse(line) as { logStartIndex: number }).logStartIndex);
  }
  return starts;
}

test('appends flow while members compact', async () => {
  const client = connect(tc.target);
  const load = streamLoad(client, 'steady-', messageCount);
  const observations = await observeCompaction(load);
  const result = await load;
  client.close();
  acknowledged = result.acknowledged;

  assert.equal(result.failures.slice(0, 5), [], 'no append fails while snapshots are taken');
  assert.is(result.acknowledged.size, messageCount);
  for (const m of tc.cluster.members) {
    const seen = observations.snapshotIndexes.get(m.id) ?? [];
    assert.ok(seen.length >= 3, `${m.id} reported growing snapshot indexes ${seen.join(', ')}`);
    assert.equal(seen, [...seen].sort((a, b) => a - b), `${m.id} snapshot index never goes down`);
    const above = observations.entriesAboveSnapshot.get(m.id) ?? Infinity;
    assert.ok(above <= entriesAboveSnapshotMax, `${m.id} kept ${above} log entries above its snapshot`);
  }
});

test('compaction saves no snapshot files', async () => {
  const ids = tc.cluster.members.map((m) => m.id);
  const synced = await waitInSync(tc.cluster, ids, messageCount);
  assert.is(synced[0]!.messageCount, messageCount);
  for (const m of tc.cluster.members) {
    const starts = loggedLogStarts(m.logFile);
    assert.ok(starts.length >= 3, `${m.id} compacted its log ${starts.length} times`);
    assert.equal(starts, [...starts].sort((a, b) => a - b), `${m.id} log start never goes down`);
    assert.ok(starts[starts.length - 1]! > starts[0]!, `${m.id} log start moved from ${starts[0]}`);
    const snapshotsTaken = await metricValue(m.http, 'replog_snapshots_total');
    assert.ok(snapshotsTaken >= 3, `${m.id} replog_snapshots_total is ${snapshotsTaken}`);
    // A snapshot fsyncs the state database instead of copying it; a copy is
    // saved only for a follower that needs one, and none did here.
    const snapshotsDir = path.join(m.dataDir, 'snapshots');
    const files = fs.existsSync(snapshotsDir) ? fs.readdirSync(snapshotsDir).filter((f) => f.endsWith('.db')) : [];
    assert.equal(files, [], `${m.id} saved no snapshot file`);
  }
});

test('metrics show status and peer traffic', async () => {
  const byId = await statuses(tc.cluster);
  for (const m of tc.cluster.members) {
    const status = byId.get(m.id)!;
    const appliedGauge = await metricValue(m.http, 'replog_applied_index');
    assert.ok(appliedGauge >= status.appliedIndex, `${m.id} replog_applied_index ${appliedGauge}, /status ${status.appliedIndex}`);
    const received = status.role === 'leader' ? 'appendResponse' : 'append';
    const count = await metricValue(m.http, `replog_peer_messages_received_total{type="${received}"}`);
    assert.ok(count > 0, `${m.id} (${status.role}) received ${count} ${received} messages`);
  }
});

test('every member stores every acknowledged message', async () => {
  for (const m of tc.cluster.members) {
    const stored = new Map((await readAll(m.grpc)).map((message) => [message.valueset, message.index]));
    assert.is(stored.size, messageCount, `${m.id} stores ${stored.size} messages`);
    for (const [valueset, index] of acknowledged) assert.is(stored.get(valueset), index, `${m.id}: ${valueset} at ${index}`);
  }
});

test.run();
