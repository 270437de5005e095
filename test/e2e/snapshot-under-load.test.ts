// Catch-up by snapshot while appends keep coming and the leader compacts its
// log many times a second. A member copies its state database only when a
// peer needs it, and the copy takes a while. It must still be usable when it
// arrives, and still on disk when a restarting member requests it again.
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isRetryableAppendError, type IngestClient } from '../../src/client';
import type { LocalMemberSpec } from '../../src/cluster/local-cluster';
import { snapshotsDirectory } from '../../src/storage/snapshot-files';
import { stateDirectory } from '../../src/storage/state-dir';
import { appendMany, connect, startCluster, waitFor, waitForLeader, waitInSync, type TestCluster } from './harness';

const snapshotThresholdEntries = 100;
const snapshotKeepEntries = 10;
/** 6,000 valuesets of about 4 KB make a state database of about 25 MB, whose copy takes a while. */
const preloadCount = 6000;
const paddingBytes = 4000;
const catchUpTimeoutMs = 60_000;
/** Load after the first snapshot install, long enough for dozens of snapshots on the leader. */
const loadAfterInstallMs = 10_000;

let tc: TestCluster;
let round = 0;

test.before(async () => {
  tc = await startCluster({
    memberArgs: ['--snapshot-threshold', String(snapshotThresholdEntries), '--snapshot-keep-entries', String(snapshotKeepEntries)],
  });
});

test.after(async () => {
  await tc.close();
});

interface LoadOutcome {
  readonly sent: number;
  readonly failures: unknown[];
}

/**
 * Runs `during` while two AppendStream calls keep thousands of appends a
 * second coming, each valueset `padding` long and more, and returns what
 * `during` returned with the load's outcome.
 */
async function underLoad<T>(client: IngestClient, during: () => Promise<T>, padding = ''): Promise<[T, LoadOutcome]> {
  const prefix = `load-${round++}-${padding}`;
  let done = false;
  let sent = 0;
  const failures: unknown[] = [];
  const load = Promise.all(
    [0, 1].map(async () => {
      while (!done) {
        const stream = client.appendStream({ windowSize: 64 });
        const batch = Array.from({ length: 256 }, () => stream.append(`${prefix}${sent++}`));
        for (const result of await Promise.allSettled(batch)) {
          if (result.status === 'rejected' && !isRetryableAppendError(result.reason)) failures.push(result.reason);
        }
        await stream.close();
      }
    }),
  );
  try {
    return [await during(), { sent, failures }];
  } finally {
    done = true;
    await load;
  }
}

/** Waits until the member's log contains `text`, or the catch-up timeout passes. Returns whether it did. */
function logShows(member: LocalMemberSpec, text: string): Promise<boolean> {
  return waitFor(`"${text}" in ${member.id}'s log`, async () => fs.readFileSync(member.logFile, 'utf8').includes(text), catchUpTimeoutMs).catch(
    () => false,
  );
}

async function expectInSync(): Promise<void> {
  const ids = tc.cluster.members.map((m) => m.id);
  const synced = await waitInSync(tc.cluster, ids, preloadCount);
  assert.ok(synced.every((s) => s.digest === synced[0]!.digest), 'every member has the same digest');
}

test('follower catches up under load', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  await tc.cluster.stopMember(follower.id, 'SIGKILL');
  const client = connect(tc.target);
  const preload = await appendMany(client, `preload-${'p'.repeat(paddingBytes)}-`, preloadCount, 64);
  assert.is(preload.failed, 0, 'the preload is stored');

  const [installed, load] = await underLoad(client, async () => {
    tc.cluster.startMember(follower.id);
    const installedOnce = await logShows(follower, 'installed snapshot from leader');
    // The leader takes many snapshots meanwhile. It must keep the entries
    // after the one installed, or the follower needs a new one each time.
    await new Promise((resolve) => setTimeout(resolve, loadAfterInstallMs));
    return installedOnce;
  }, 'p'.repeat(paddingBytes));
  client.close();
  assert.ok(installed, `${follower.id} installed a snapshot while ${load.sent} appends were sent`);
  assert.equal(load.failures.slice(0, 3), [], 'appends fail only with retryable errors');
  const installs = fs.readFileSync(follower.logFile, 'utf8').split('installed snapshot from leader').length - 1;
  assert.is(installs, 1, `${follower.id} installed ${installs} snapshots under load`);
  await expectInSync();
});

test('member without state fetches under load', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const client = connect(tc.target);
  const [fetched, load] = await underLoad(client, async () => {
    await tc.cluster.stopMember(follower.id, 'SIGKILL');
    fs.rmSync(stateDirectory(follower.dataDir), { recursive: true, force: true });
    fs.rmSync(snapshotsDirectory(follower.dataDir), { recursive: true, force: true });
    tc.cluster.startMember(follower.id);
    return logShows(follower, 'fetched snapshot from a peer');
  });
  client.close();
  assert.ok(fetched, `${follower.id} fetched a snapshot while ${load.sent} appends were sent`);
  assert.equal(load.failures.slice(0, 3), [], 'appends fail only with retryable errors');
  await expectInSync();
});

test.run();
