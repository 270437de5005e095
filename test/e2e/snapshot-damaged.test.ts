// A damaged snapshot file on the leader, with real member processes. The
// follower that needs the snapshot rejects the transfer by its SHA-256. The
// leader then finds its file damaged and takes a new snapshot, so the
// follower catches up without any new append.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalMemberSpec } from '../../src/cluster/local-cluster';
import { appendMany, connect, fetchStatus, readAll, saveSnapshotFile, startCluster, waitFor, waitForLeader, waitInSync, type TestCluster } from './harness';

const snapshotThresholdEntries = 300;
const snapshotKeepEntries = 20;
const messagesPerRound = 1000;
const appendConcurrency = 32;
/** SQLite's default page size: one page of the file is overwritten. */
const pageBytes = 4096;
const catchUpTimeoutMs = 30_000;
/** Time a member's asynchronous log gets to show a line after /status shows its effect. */
const logFlushTimeoutMs = 5_000;

interface Damage {
  readonly name: string;
  readonly apply: (filePath: string) => void;
}

const damages: readonly Damage[] = [
  {
    name: 'a page overwritten',
    apply: (filePath) => {
      const pageStart = Math.floor(fs.statSync(filePath).size / 2 / pageBytes) * pageBytes;
      const fd = fs.openSync(filePath, 'r+');
      fs.writeSync(fd, Buffer.alloc(pageBytes, 0xa5), 0, pageBytes, pageStart);
      fs.closeSync(fd);
    },
  },
  {
    name: 'the file truncated',
    apply: (filePath) => fs.truncateSync(filePath, Math.floor(fs.statSync(filePath).size / 2)),
  },
];

let tc: TestCluster;
const acknowledged = new Map<string, number>();

test.before(async () => {
  tc = await startCluster({
    memberArgs: ['--snapshot-threshold', String(snapshotThresholdEntries), '--snapshot-keep-entries', String(snapshotKeepEntries)],
  });
});

test.after(async () => {
  await tc.close();
});

function sha256Of(filePath: string): string {
  return createHash('sha256').update(fs.readFileSync(filePath)).digest('hex');
}

interface SnapshotFile {
  readonly index: number;
  readonly path: string;
  readonly expectedSha256: string;
}

/** Returns the member's newest complete snapshot, with the SHA-256 its sidecar records. */
function newestSnapshot(member: LocalMemberSpec): SnapshotFile | null {
  const folder = path.join(member.dataDir, 'snapshots');
  const complete = (name: string): boolean =>
    /^snapshot-\d+-\d+\.db$/.test(name) && fs.existsSync(path.join(folder, `${name}.sha256`));
  const files = fs.readdirSync(folder).filter(complete);
  const newest = files.map((name) => ({ name, index: Number(name.split('-')[1]) })).sort((a, b) => b.index - a.index)[0];
  if (!newest) return null;
  const filePath = path.join(folder, newest.name);
  return { index: newest.index, path: filePath, expectedSha256: fs.readFileSync(`${filePath}.sha256`, 'utf8').slice(0, 64) };
}

/**
 * Waits until the leader's snapshots settle, then has it save a snapshot file,
 * as it does for a follower that needs one, and returns that file.
 */
async function settledSnapshot(leader: LocalMemberSpec): Promise<SnapshotFile> {
  const status = await waitFor('the leader to finish its snapshots', async () => {
    const current = await fetchStatus(leader.http);
    if (current === null || current.snapshotIndex === 0) return null;
    return current.appliedIndex - current.snapshotIndex < snapshotThresholdEntries ? current : null;
  });
  const index = await saveSnapshotFile(leader.grpc, status.snapshotIndex);
  const newest = newestSnapshot(leader);
  assert.ok(newest, 'the leader has a snapshot file');
  assert.is(newest!.index, index, 'the newest file is the one sent');
  return newest!;
}

async function metricValue(httpAddress: string, series: string): Promise<number> {
  const text = await (await fetch(`http://${httpAddress}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/**
 * Returns the first line from `offset` on that contains `text`, waiting for it
 * a while because members write their log asynchronously, or null.
 */
async function loggedLine(logFile: string, offset: number, text: string): Promise<string | null> {
  const find = async (): Promise<string | null> => {
    const log = fs.readFileSync(logFile).subarray(offset).toString('utf8');
    return log.split('\n').find((line) => line.includes(text)) ?? null;
  };
  return waitFor(`"${text}" in ${logFile}`, find, logFlushTimeoutMs).catch(() => null);
}

for (const [round, damage] of damages.entries()) {
  test(`leader snapshot with ${damage.name} is replaced`, async () => {
    const leaderStatus = await waitForLeader(tc.cluster);
    const leader = tc.cluster.member(leaderStatus.id);
    const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
    await tc.cluster.stopMember(follower.id, 'SIGKILL');
    const client = connect(tc.target);
    const load = await appendMany(client, `round${round}-`, messagesPerRound, appendConcurrency);
    client.close();
    assert.is(load.failed, 0, 'no append fails with one follower down');
    for (const [valueset, index] of load.acknowledged) acknowledged.set(valueset, index);

    const snapshot = await settledSnapshot(leader);
    damage.apply(snapshot.path);
    assert.is.not(sha256Of(snapshot.path), snapshot.expectedSha256, 'the damaged file no longer matches its sidecar');
    const failedBefore = await metricValue(leader.http, 'replog_install_snapshot_sent_total{result="failed"}');
    const leaderOffset = fs.statSync(leader.logFile).size;
    const followerOffset = fs.statSync(follower.logFile).size;
    tc.cluster.startMember(follower.id);

    const ids = tc.cluster.members.map((m) => m.id);
    await waitInSync(tc.cluster, ids, acknowledged.size, catchUpTimeoutMs);
    const rejection = await loggedLine(follower.logFile, followerOffset, 'receiving snapshot failed');
    assert.ok(rejection, 'the follower rejected a transfer');
    assert.match(rejection!, /SHA-256/, 'the follower rejected it by its SHA-256');
    const installed = await loggedLine(follower.logFile, followerOffset, 'installed snapshot from leader');
    assert.ok(installed, 'the follower installed a good snapshot');
    const damageFound = await loggedLine(leader.logFile, leaderOffset, 'local snapshot does not match its SHA-256 sidecar');
    assert.ok(damageFound, 'the leader found its file damaged');
    const failedAfter = await metricValue(leader.http, 'replog_install_snapshot_sent_total{result="failed"}');
    assert.ok(failedAfter > failedBefore, `the leader counted the failed transfer (${failedBefore} -> ${failedAfter})`);
    const replaced = newestSnapshot(leader);
    assert.ok(replaced, 'the leader has a snapshot');
    assert.is(sha256Of(replaced!.path), replaced!.expectedSha256, 'the leader newest snapshot matches its sidecar again');
  });
}

test('every member stores every acknowledged message', async () => {
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), acknowledged.size);
  for (const m of tc.cluster.members) {
    const stored = new Map((await readAll(m.grpc)).map((message) => [message.valueset, message.index]));
    assert.is(stored.size, acknowledged.size, `${m.id} stores ${stored.size} messages`);
    for (const [valueset, index] of acknowledged) assert.is(stored.get(valueset), index, `${m.id}: ${valueset} at ${index}`);
  }
});

test.run();
