// The leader logs a warning when a follower stops responding for longer
// than an election timeout, and a line when it responds again, so that an
// operator sees a stopped or cut-off follower in the leader's log. The
// follower is paused with SIGSTOP and resumed.
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCluster, waitFor, waitForLeader, type TestCluster } from './harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ size: 3 });
});

test.after(async () => {
  for (const member of tc.cluster.members) tc.cluster.resumeMember(member.id);
  await tc.close();
});

/** Returns the leader's log lines with message `msg` about follower `peerId`. */
function linesAbout(logFile: string, msg: string, peerId: string): Record<string, unknown>[] {
  return fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry['msg'] === msg && entry['peerId'] === peerId);
}

test('leader logs a silent follower', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!.id;
  const logFile = tc.cluster.member(leader.id).logFile;

  tc.cluster.pauseMember(follower);
  await waitFor('the warning about the paused follower', async () => linesAbout(logFile, 'follower not responding', follower).length > 0);
  // Several more election timeouts of silence must not repeat the warning.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  tc.cluster.resumeMember(follower);
  await waitFor('the line about the resumed follower', async () => linesAbout(logFile, 'follower responding again', follower).length > 0);

  const silent = linesAbout(logFile, 'follower not responding', follower);
  assert.is(silent.length, 1, 'one warning while the follower stays paused');
  assert.is(silent[0]!['level'], 40, 'the warning is at warn level');
  assert.ok(Number(silent[0]!['lastContactMs']) >= 300, `lastContactMs ${String(silent[0]!['lastContactMs'])} is at least the 300 ms election timeout`);
});

test.run();
