// `replog send` as a real process against a real one-member cluster. Ctrl-C
// (SIGINT) stops sending and prints the summary so far with exit status 130.
// A second one exits at once, and the wait for appends in flight is bounded.
// A valueset from stdin that fails is named by its line.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cliPath } from '../../src/cluster/local-cluster';
import { fetchStatus, startCluster, waitFor, type TestCluster } from '../e2e/harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ size: 1 });
});

test.after(async () => {
  await tc.close();
});

interface SendProcess {
  readonly child: ChildProcess;
  readonly output: { stdout: string; stderr: string };
  /** Resolves with the exit status and the time of the exit, from performance.now(). */
  readonly exited: Promise<{ code: number | null; atMs: number }>;
}

/** Starts `replog send --target <the member, or target> ...args`. When given, `stdin` is written and then closed. */
function startSend(args: readonly string[], stdin?: string, target = tc.cluster.members[0]!.grpc): SendProcess {
  const child = spawn(process.execPath, [cliPath, 'send', '--target', target, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  if (stdin !== undefined) child.stdin!.end(stdin);
  const exited = new Promise<{ code: number | null; atMs: number }>((resolve) =>
    child.on('close', (code) => resolve({ code, atMs: performance.now() })),
  );
  return { child, output, exited };
}

async function messageCount(): Promise<number> {
  return (await fetchStatus(tc.cluster.members[0]!.http))?.messageCount ?? 0;
}

/** Waits until the member stores `count` more messages than it did when called. */
async function waitForMoreMessages(count: number): Promise<void> {
  const before = await messageCount();
  await waitFor(`${count} more messages stored`, async () => (await messageCount()) >= before + count);
}

/** Returns the number on the summary line that starts with `name`, e.g. `stored        1824`. */
function summaryNumber(stdout: string, name: string): number {
  const match = new RegExp(`^${name} +(\\d+)`, 'm').exec(stdout);
  assert.ok(match, `no "${name}" line in:\n${stdout}`);
  return Number(match![1]);
}

test('SIGINT prints summary, exits 130', async () => {
  const before = await messageCount();
  const send = startSend(['--count', '20000']);
  await waitForMoreMessages(200);
  send.child.kill('SIGINT');
  const signalAtMs = performance.now();
  const { code, atMs } = await send.exited;
  const { stdout, stderr } = send.output;

  assert.is(code, 130, stderr);
  assert.ok(atMs - signalAtMs < 5_000, `exited ${Math.round(atMs - signalAtMs)} ms after SIGINT, the bound is the 5000 ms deadline`);
  assert.ok(stdout.startsWith('interrupted   by SIGINT, after which no valueset was sent\n'), stdout);
  assert.match(stderr, 'replog send: SIGINT: sending no more valuesets');
  const sent = summaryNumber(stdout, 'sent');
  const stored = summaryNumber(stdout, 'stored');
  const duplicates = summaryNumber(stdout, 'duplicates');
  const errors = summaryNumber(stdout, 'errors');
  const unanswered = /^unanswered/m.test(stdout) ? summaryNumber(stdout, 'unanswered') : 0;
  assert.ok(stored >= 200, `stored ${stored}`);
  assert.ok(sent < 20_000, `sent ${sent} of 20000: sending stopped early`);
  assert.is(stored + duplicates + errors + unanswered, sent, 'every append sent is counted once');
  assert.ok((await messageCount()) - before >= stored, 'the member stores every append acknowledged');
});

test('second SIGINT exits at once', async () => {
  const send = startSend(['--count', '20000', '--deadline-ms', '20000']);
  await waitForMoreMessages(100);
  // With the member stopped, the appends in flight get no reply, so send would wait 20 s.
  tc.cluster.pauseMember('n1');
  try {
    send.child.kill('SIGINT');
    await waitFor('the interrupt notice', async () => send.output.stderr.includes('Press Ctrl-C again'));
    send.child.kill('SIGINT');
    const signalAtMs = performance.now();
    const { code, atMs } = await send.exited;

    assert.is(code, 130, send.output.stderr);
    assert.ok(atMs - signalAtMs < 2_000, `exited ${Math.round(atMs - signalAtMs)} ms after the second SIGINT`);
    assert.match(send.output.stderr, /waiting up to 20000 ms \(--deadline-ms\) for \d+ appends? in flight/);
    assert.match(send.output.stderr, 'replog send: SIGINT again: exiting without waiting for the appends in flight');
    assert.is(send.output.stdout, '', 'no summary');
  } finally {
    tc.cluster.resumeMember('n1');
    send.child.kill('SIGKILL');
  }
});

test('wait after SIGINT is bounded', async () => {
  const send = startSend(['--count', '20000', '--deadline-ms', '1500']);
  await waitForMoreMessages(100);
  tc.cluster.pauseMember('n1');
  try {
    send.child.kill('SIGTERM');
    const signalAtMs = performance.now();
    const { code, atMs } = await send.exited;
    const { stdout, stderr } = send.output;

    assert.is(code, 130, stderr);
    // 1500 ms of deadline, plus the time to start the wait and print.
    assert.ok(atMs - signalAtMs < 3_500, `exited ${Math.round(atMs - signalAtMs)} ms after SIGTERM`);
    assert.ok(stdout.startsWith('interrupted   by SIGTERM, after which no valueset was sent\n'), stdout);
    // Their attempts time out while send waits, and with no retry left their outcome is unknown.
    assert.ok(summaryNumber(stdout, 'unanswered') > 0, `the appends to the stopped member are unanswered:\n${stdout}`);
    assert.is(summaryNumber(stdout, 'errors'), 0, `a timed-out append is not an error after the signal:\n${stdout}`);
    assert.is(summaryNumber(stdout, 'retries'), 0, 'no retry after the signal');
  } finally {
    tc.cluster.resumeMember('n1');
    send.child.kill('SIGKILL');
  }
});

test('stderr notes appends failing together', async () => {
  const send = startSend(['--count', '20000', '--concurrency', '2', '--deadline-ms', '300', '--retries', '0']);
  await waitForMoreMessages(100);
  // With the member stopped, each attempt times out after 300 ms, and with no retry the append fails.
  tc.cluster.pauseMember('n1');
  try {
    await waitFor('the outage notice', async () => send.output.stderr.includes('Members may be down'));
    tc.cluster.resumeMember('n1');
    send.child.kill('SIGINT');
    const { code } = await send.exited;
    const { stdout, stderr } = send.output;

    assert.is(code, 130, stderr);
    assert.match(
      stderr,
      /replog send: the last \d+ appends failed after all their retries, the last one with DEADLINE_EXCEEDED: .*Press Ctrl-C to stop\.\n/,
    );
    assert.is(stderr.split('Members may be down').length - 1, 1, `one notice within 10 s:\n${stderr}`);
    assert.ok(summaryNumber(stdout, 'errors') >= 2, stdout);
  } finally {
    tc.cluster.resumeMember('n1');
    send.child.kill('SIGKILL');
  }
});

test('stdin error names its line', async () => {
  const run = `line-${process.pid}-${Date.now()}`;
  // Line 2 is empty and skipped, but counted; lines 3 and 5 are over 65,536 bytes.
  const lines = [`${run}-a`, '', 'x'.repeat(70_000), `${run}-b`, 'y'.repeat(70_001), `${run}-c`];
  const send = startSend([], `${lines.join('\n')}\n`);
  const { code } = await send.exited;
  const { stdout, stderr } = send.output;

  assert.is(code, 1, stderr);
  assert.match(stdout, /^errors +2 \(INVALID_ARGUMENT 2\)$/m);
  assert.ok(
    stdout.includes(
      'first INVALID_ARGUMENT: invalid valueset: 70000 UTF-8 bytes is over the limit of 65536 bytes ' +
        '(stdin line 3, starting "xxxxxxxxxxxxxxxxxxxx")\n',
    ),
    stdout,
  );
});

test('stream keeps lines after oversize', async () => {
  const run = `stream-${process.pid}-${Date.now()}`;
  // Line 2 is over gRPC's 1 MiB message limit, which would end the stream.
  const lines = [`${run}-a`, 'w'.repeat(1_100_000), `${run}-b`, `${run}-c`, `${run}-d`];
  const before = await messageCount();
  const send = startSend(['--stream', '--concurrency', '4'], `${lines.join('\n')}\n`);
  const { code } = await send.exited;
  const { stdout, stderr } = send.output;

  assert.is(code, 1, stderr);
  assert.match(stdout, /^errors +1 \(INVALID_ARGUMENT 1\)$/m);
  assert.match(stdout, /first INVALID_ARGUMENT: invalid valueset: 1100000 UTF-8 bytes is over the limit of 65536 bytes \(stdin line 2,/);
  assert.is(summaryNumber(stdout, 'stored'), 4, stdout);
  assert.is(await messageCount(), before + 4, 'the lines after the long one are stored');
});

test('stdin error line in JSON', async () => {
  const send = startSend(['--json'], `ok-${process.pid}-${Date.now()}\n${'z'.repeat(65_537)}\n`);
  const { code } = await send.exited;
  const summary = JSON.parse(send.output.stdout) as Record<string, unknown>;

  assert.is(code, 1, send.output.stderr);
  assert.equal(summary['firstErrorLineByCode'], { INVALID_ARGUMENT: { line: 2, start: 'z'.repeat(20), truncated: true } });
  assert.is(summary['interruptedBy'], null);
  assert.is(summary['unanswered'], 0);
});

test('SIGINT while connecting exits 130', async () => {
  // A server that accepts connections and never speaks HTTP/2 keeps send connecting.
  const silent = net.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as net.AddressInfo).port;
  try {
    const send = startSend(['--count', '10'], undefined, `127.0.0.1:${port}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    send.child.kill('SIGINT');
    const { code } = await send.exited;
    assert.is(code, 130, send.output.stderr);
    assert.match(send.output.stderr, `SIGINT while connecting to --target 127.0.0.1:${port}: nothing was sent`);
  } finally {
    silent.close();
  }
});

test.run();
