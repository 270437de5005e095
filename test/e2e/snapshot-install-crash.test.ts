// kill -9 of a follower while it receives and installs a snapshot of about
// 40 MB, at several moments, with real member processes. Every restart must
// come up (no crash loop, no leftovers that stop it), and the follower must
// end with the leader's digest.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isRetryableAppendError, type IngestClient } from '../../src/client';
import type { LocalMemberSpec } from '../../src/cluster/local-cluster';
import type { MemberStatus } from '../../src/node/member';
import { connect, fetchStatus, saveSnapshotFile, sleep, startCluster, waitFor, waitForLeader, waitInSync, type TestCluster } from './harness';

const snapshotThresholdEntries = 500;
const snapshotKeepEntries = 20;
/** 1,000 valuesets of about 40 KB make a state database of about 40 MB. */
const messageCount = 1000;
const valuesetPaddingBytes = 40_000;
const streamWindowSize = 16;
/**
 * Kill moments, as ranges of the fraction of the snapshot received; each
 * kill picks a random point in its range. Progress is read from the size of
 * the follower's `.partial` file, so the moments do not depend on the
 * machine's speed.
 */
const killFractionRanges: readonly (readonly [number, number])[] = [[0, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 0.99]];
/** Short, so that the copy step of an install (tens of ms) is seen. */
const pollMs = 2;
const restartTimeoutMs = 20_000;
const catchUpTimeoutMs = 60_000;
/** Time a member's asynchronous log gets to show a line after /status shows its effect. */
const logFlushTimeoutMs = 5_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({
    memberArgs: ['--snapshot-threshold', String(snapshotThresholdEntries), '--snapshot-keep-entries', String(snapshotKeepEntries)],
  });
});

test.after(async () => {
  await tc.close();
});

/** Rounds of appends: the first, then the resends of those that failed with a retryable error. */
const appendRoundsMax = 5;

/**
 * Appends `count` large unique valuesets over three AppendStream calls and
 * returns the errors of those that failed for good. An append that fails
 * with a retryable error is sent again in the next round. On a loaded
 * machine the only follower still running can miss an election timeout, so
 * the leader steps down and the appends in flight fail with UNAVAILABLE.
 * Members store a valueset at most once, so resending one that did commit
 * is harmless.
 */
async function appendLarge(client: IngestClient, prefix: string, count: number): Promise<string[]> {
  const padding = 'x'.repeat(valuesetPaddingBytes);
  let valuesets = Array.from({ length: count }, (_, i) => `${prefix}${i}-${padding}`);
  let errors: unknown[] = [];
  for (let round = 1; round <= appendRoundsMax && valuesets.length > 0; round++) {
    if (round > 1) console.log(`resending ${valuesets.length} appends that failed with a retryable error`);
    const streams = [0, 1, 2].map(() => client.appendStream({ windowSize: streamWindowSize }));
    const batch = valuesets;
    const results = await Promise.allSettled(batch.map((valueset, i) => streams[i % streams.length]!.append(valueset)));
    await Promise.all(streams.map((s) => s.close()));
    const failed = batch.flatMap((valueset, i) => {
      const result = results[i]!;
      return result.status === 'rejected' ? [{ valueset, error: result.reason as unknown }] : [];
    });
    errors = failed.map((f) => f.error);
    if (failed.some((f) => !isRetryableAppendError(f.error))) break;
    valuesets = failed.map((f) => f.valueset);
  }
  return errors.map((err) => (err instanceof Error ? err.message : String(err)));
}

function snapshotsFolder(member: LocalMemberSpec): string {
  return path.join(member.dataDir, 'snapshots');
}

/** Returns the `.partial` snapshot files of the member with their sizes. */
function partialFiles(member: LocalMemberSpec): Map<string, number> {
  const files = new Map<string, number>();
  if (!fs.existsSync(snapshotsFolder(member))) return files;
  for (const name of fs.readdirSync(snapshotsFolder(member))) {
    if (!name.endsWith('.partial')) continue;
    try {
      files.set(name, fs.statSync(path.join(snapshotsFolder(member), name)).size);
    } catch {
      // Deleted between readdir and stat.
    }
  }
  return files;
}

/** Returns the state database files in the member's state folder. */
function stateFiles(member: LocalMemberSpec): string[] {
  return fs.readdirSync(path.join(member.dataDir, 'state')).filter((name) => /^state-\d+\.db$/.test(name));
}

/** Returns the size of the newest snapshot file of the member. */
function newestSnapshotBytes(member: LocalMemberSpec): number {
  const names = fs.readdirSync(snapshotsFolder(member)).filter((name) => /^snapshot-\d+-\d+\.db$/.test(name));
  names.sort((a, b) => Number(b.split('-')[1]) - Number(a.split('-')[1]));
  assert.ok(names[0], `${member.id} has a snapshot`);
  return fs.statSync(path.join(snapshotsFolder(member), names[0]!)).size;
}

interface Restart {
  readonly child: ChildProcess;
  /** False when the member caught up before `reached` became true. */
  readonly reached: boolean;
}

/**
 * Starts the member and waits until `reached()` or until it has applied
 * `appliedMin`. Fails when the process exits first, which is what a crash at
 * start looks like.
 */
async function restartUntil(member: LocalMemberSpec, reached: () => boolean, appliedMin: number): Promise<Restart> {
  const offset = fs.statSync(member.logFile).size;
  const child = tc.cluster.startMember(member.id);
  const deadline = Date.now() + restartTimeoutMs;
  // The status is fetched in the background, because a member busy installing
  // does not respond, and waiting for it would miss the moment to kill it.
  let caughtUp = false;
  let statusRequest: Promise<void> | null = null;
  for (;;) {
    if (reached()) return { child, reached: true };
    if (caughtUp) return { child, reached: false };
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = fs.readFileSync(member.logFile).subarray(offset).toString('utf8');
      assert.unreachable(`${member.id} exited (${child.exitCode ?? child.signalCode}) after a restart:\n${log.slice(-2000)}`);
    }
    statusRequest ??= fetchStatus(member.http).then((status) => {
      caughtUp ||= (status?.appliedIndex ?? 0) >= appliedMin;
      statusRequest = null;
    });
    if (Date.now() > deadline) assert.unreachable(`${member.id} did not reach ${reached.name} within ${restartTimeoutMs} ms`);
    await sleep(pollMs);
  }
}

/** Returns a check that is true once a new `.partial` file contains `targetBytes`. */
function receivedAtLeast(member: LocalMemberSpec, targetBytes: number): () => boolean {
  const stale = new Set(partialFiles(member).keys());
  return function received(): boolean {
    for (const [name, bytes] of partialFiles(member)) if (!stale.has(name) && bytes >= targetBytes) return true;
    return false;
  };
}

/** Returns a check that is true once a new state database file appears: the copy step of an install. */
function copyingIntoState(member: LocalMemberSpec): () => boolean {
  const before = stateFiles(member);
  return function copying(): boolean {
    return stateFiles(member).some((name) => !before.includes(name));
  };
}

test('killed installing follower restarts and catches up', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  await tc.cluster.stopMember(follower.id, 'SIGKILL');
  const client = connect(tc.target);
  const failures = await appendLarge(client, 'large-', messageCount);
  assert.equal(failures.slice(0, 3), [], `every append is stored with one follower down, ${failures.length} failed`);
  client.close();
  // The leader saves the file it sends now, as the restarted follower would
  // make it do, so that its size is known before the first kill.
  const leaderStatus = await waitFor('the leader to take a snapshot', async () => {
    const status = await fetchStatus(tc.cluster.member(leader.id).http);
    return status !== null && status.snapshotIndex > 0 ? status : null;
  });
  await saveSnapshotFile(tc.cluster.member(leader.id).grpc, leaderStatus.snapshotIndex);
  const snapshotBytes = newestSnapshotBytes(tc.cluster.member(leader.id));

  const kills: string[] = [];
  let restart: Restart | null = null;
  for (const [from, to] of killFractionRanges) {
    const fraction = from + Math.random() * (to - from);
    restart = await restartUntil(follower, receivedAtLeast(follower, Math.round(fraction * snapshotBytes)), messageCount);
    if (!restart.reached) break;
    await tc.cluster.stopMember(follower.id, 'SIGKILL');
    kills.push(`at ${(fraction * 100).toFixed(0)}% received`);
  }
  if (restart?.reached) {
    restart = await restartUntil(follower, copyingIntoState(follower), messageCount);
    if (restart.reached) {
      await tc.cluster.stopMember(follower.id, 'SIGKILL');
      kills.push('while copying into the state folder');
    }
  }
  assert.ok(kills.length >= 3, `at least three kills interrupted a transfer or install: ${kills.join('; ')}`);

  const lastOffset = fs.statSync(follower.logFile).size;
  const last = restart?.reached === false ? restart.child : tc.cluster.startMember(follower.id);
  const ids = tc.cluster.members.map((m) => m.id);
  let synced: MemberStatus[] = [];
  try {
    synced = await waitInSync(tc.cluster, ids, messageCount, catchUpTimeoutMs);
  } catch (err) {
    const status = await fetchStatus(follower.http);
    assert.unreachable(`${(err as Error).message} after kills ${kills.join('; ')}; follower status ${JSON.stringify(status)}`);
  }
  assert.is(last.exitCode, null, 'the follower runs after the last restart');
  assert.is(last.signalCode, null, 'the follower was not killed after the last restart');
  assert.ok(synced.every((s) => s.messageCount === messageCount), `every member stores ${messageCount} messages`);
  assert.ok(synced.every((s) => s.snapshotIndex > 0), 'every member reports a snapshot');
  // Members write their log asynchronously, so the line may follow the status.
  const installedLogged = async (): Promise<boolean> =>
    fs.readFileSync(follower.logFile, 'utf8').includes('installed snapshot from leader');
  const installed = await waitFor('the install in the log', installedLogged, logFlushTimeoutMs).catch(() => false);
  assert.ok(installed, 'the follower installed a snapshot');
  const lastLog = fs.readFileSync(follower.logFile).subarray(lastOffset).toString('utf8');
  assert.not.match(lastLog, /"level":(50|60)/, 'the last start logged no error');
  assert.equal(stateFiles(follower).length, 1, 'interrupted installs left no extra state database');
  assert.equal([...partialFiles(follower).keys()], [], 'interrupted transfers left no partial snapshot file');
});

test.run();
