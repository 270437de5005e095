// A member's wall clock jumps an hour forward and back while the cluster takes
// appends. Raft timers use the monotonic clock, so no election may happen (the
// term stays put) and no stored data may change: the only visible effect is the
// received_at_ms of appends the leader took while its clock was off.
//
// The clock is moved with libfaketime (Debian package `faketime`), preloaded
// into each member with its own FAKETIME_TIMESTAMP_FILE. The test rewrites
// that file ("+1h", "-1h", "+0"), and the member reads it on every wall-clock
// call (FAKETIME_NO_CACHE=1, about 2 us per Date.now()). With
// FAKETIME_CACHE_DURATION=1 instead, libfaketime 0.9.10 missed some rewrites
// for longer than the cache time in our runs. The monotonic clock is left
// alone (FAKETIME_DONT_FAKE_MONOTONIC=1), as an NTP step leaves it alone.
// Without libfaketime the test is skipped with a message.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalCluster } from '../../src/cluster/local-cluster';
import { appendMany, connect, sleep, statuses, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
import { readMessages, startFaultCluster, startMemberWith, startWatchdog } from './fault-harness';

/** Where Debian and Ubuntu (package libfaketime) and source builds put the multithreaded library. */
const libraryCandidates = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/faketime/libfaketimeMT.so.1',
  '/usr/local/lib/faketime/libfaketimeMT.so.1',
];
const library = libraryCandidates.find((file) => fs.existsSync(file));
/** Wait after rewriting a timestamp file, so appends in flight finish under the old clock. */
const settleAfterJumpMs = 200;
const hourMs = 3_600_000;
/** Tolerance when matching received_at_ms against the test's own clock, in milliseconds. */
const receivedSlackMs = 5000;
const appendsPerPhase = 300;
const fileLimitMs = 60_000;

let tc: TestCluster;

function clockFile(cluster: LocalCluster, id: string): string {
  return path.join(path.dirname(cluster.member(id).dataDir), `${id}.faketime`);
}

function setClockOffset(id: string, offset: string): void {
  fs.writeFileSync(clockFile(tc.cluster, id), `${offset}\n`);
}

function startFaked(cluster: LocalCluster, id: string): void {
  fs.writeFileSync(clockFile(cluster, id), '+0\n');
  startMemberWith(cluster, id, {
    env: {
      LD_PRELOAD: library!,
      FAKETIME_TIMESTAMP_FILE: clockFile(cluster, id),
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    },
  });
}

/** Appends `count` valuesets while the clocks are as set; returns the real time span. */
async function appendPhase(prefix: string): Promise<{ startMs: number; endMs: number }> {
  await sleep(settleAfterJumpMs);
  const client = connect(tc.target);
  const startMs = Date.now();
  const result = await appendMany(client, prefix, appendsPerPhase, 8);
  const endMs = Date.now();
  client.close();
  assert.is(result.failed, 0, `every ${prefix} append succeeds`);
  return { startMs, endMs };
}

test.before(async () => {
  if (!library) return;
  tc = await startFaultCluster({ startMember: startFaked });
  startWatchdog('clock-jump.test', fileLimitMs, () => tc.cluster.processes.forEach((p) => p.kill('SIGKILL')));
});

test.after(async () => {
  await tc?.close();
});

test('wall clock jumps cause no election', async () => {
  if (!library) {
    console.log(`skipped: libfaketime not found in ${libraryCandidates.join(', ')}; apt-get install -y faketime`);
    return;
  }
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!.id;
  await appendPhase('before-');
  const before = await readMessages(tc.cluster.member(leader.id).grpc);

  setClockOffset(leader.id, '+1h');
  const ahead = await appendPhase('ahead-');
  setClockOffset(leader.id, '+0');
  setClockOffset(follower, '-1h');
  const back = await appendPhase('back-');
  setClockOffset(follower, '+0');
  await appendPhase('after-');

  const all = await statuses(tc.cluster);
  for (const s of all.values()) {
    assert.is(s.term, leader.term, `${s.id} is still at term ${leader.term}`);
    assert.is(s.leaderId, leader.id, `${s.id} still follows ${leader.id}`);
  }
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), appendsPerPhase * 4);

  for (const m of tc.cluster.members) {
    const messages = await readMessages(m.grpc);
    const byValueset = new Map(messages.map((msg) => [msg.valueset, msg]));
    for (const old of before) {
      assert.equal(byValueset.get(old.valueset), old, `${m.id} keeps ${old.valueset} unchanged`);
    }
    for (const msg of messages.filter((x) => x.valueset.startsWith('ahead-'))) {
      const inRange = msg.receivedAtMs >= ahead.startMs + hourMs - receivedSlackMs && msg.receivedAtMs <= ahead.endMs + hourMs + receivedSlackMs;
      assert.ok(inRange, `${msg.valueset} carries the leader's clock, an hour ahead`);
    }
    for (const msg of messages.filter((x) => x.valueset.startsWith('back-'))) {
      const inRange = msg.receivedAtMs >= back.startMs - receivedSlackMs && msg.receivedAtMs <= back.endMs + receivedSlackMs;
      assert.ok(inRange, `${msg.valueset} carries the leader's clock, back to real time`);
    }
  }
});

test.run();
