// `replog send` spreads appends over three members round robin. One of them
// is paused with SIGSTOP while the send runs: its TCP connection stays open,
// so only the client's pings show that it stopped responding. The send runs
// with a 60 s deadline per attempt. Without pings, every append sent to the
// paused member waits those 60 s. With them, the connection closes within
// about 10 s and the appends on it are retried on the other members. The
// send then ends long before one deadline passes.
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cliPath } from '../../src/cluster/local-cluster';
import { fetchStatus, startCluster, waitFor, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';

const count = 3000;
const deadlineMs = 60_000;
/** Time the send may take after the pause, well below one attempt's deadline. */
const sendLimitMs = 40_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ size: 3 });
});

test.after(async () => {
  await tc.close();
});

/** Returns the number on the summary line that starts with `name`, e.g. `stored        1824`. */
function summaryNumber(stdout: string, name: string): number {
  const match = new RegExp(`^${name} +(\\d+)`, 'm').exec(stdout);
  assert.ok(match, `no "${name}" line in:\n${stdout}`);
  return Number(match![1]);
}

test('send moves past a paused member', async () => {
  const leader = await waitForLeader(tc.cluster);
  const paused = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const leaderHttp = tc.cluster.member(leader.id).http;
  const before = (await fetchStatus(leaderHttp))?.messageCount ?? 0;

  const args = ['send', '--target', tc.target, '--count', String(count), '--concurrency', '8', '--deadline-ms', String(deadlineMs)];
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));

  // Pauses the member once the send is under way, so the client has a live connection to it.
  await waitFor('the send to store 200 messages', async () => ((await fetchStatus(leaderHttp))?.messageCount ?? 0) >= before + 200);
  tc.cluster.pauseMember(paused.id);
  const pausedAtMs = performance.now();
  const limit = setTimeout(() => child.kill('SIGKILL'), sendLimitMs);
  const code = await exited;
  clearTimeout(limit);
  const tookMs = Math.round(performance.now() - pausedAtMs);
  tc.cluster.resumeMember(paused.id);
  console.log(`send ended ${tookMs} ms after ${paused.id} was paused`);

  assert.is(code, 0, `send exits 0 within ${sendLimitMs} ms of the pause (took ${tookMs} ms)\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  assert.is(summaryNumber(stdout, 'errors'), 0, stdout);
  assert.is(summaryNumber(stdout, 'stored') + summaryNumber(stdout, 'duplicates'), count, stdout);
  const applied = (await fetchStatus(leaderHttp))?.appliedIndex ?? 0;
  const synced = await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), applied);
  assert.equal(synced.map((s) => s.messageCount), [before + count, before + count, before + count], 'every member stores each valueset once');
});

test.run();
