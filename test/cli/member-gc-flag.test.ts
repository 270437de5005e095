// Members that `replog cluster` starts run with Node's --single-threaded-gc,
// and the "member started" log line shows whether the flag is on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalCluster } from '../../src/cluster/local-cluster';
import { singleThreadedGcEnabled } from '../../src/node/run-member';

let dir = '';

test.before.each(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-gc-flag-'));
});

test.after.each(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Returns the "member started" entry of a JSON log, or null when it is not there yet. */
function startedEntry(log: string): Record<string, unknown> | null {
  // The text after the last newline may be a line the member is still writing.
  const lines = log.split('\n').slice(0, -1);
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry['msg'] === 'member started') return entry;
  }
  return null;
}

/** Polls `readLog` until it contains the "member started" entry, for up to 20 s. */
async function waitForStart(readLog: () => string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const entry = startedEntry(readLog());
    if (entry !== null) return entry;
    if (Date.now() > deadline) throw new Error(`no "member started" line in:\n${readLog()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts a one-member LocalCluster with `nodeFlags` and returns its "member started" entry. */
async function startedEntryWith(nodeFlags: string[]): Promise<Record<string, unknown>> {
  const cluster = await LocalCluster.create({ dataDir: dir, size: 1, basePort: 0, withHaproxy: false, nodeFlags });
  try {
    cluster.startAll();
    const logFile = cluster.member('n1').logFile;
    return await waitForStart(() => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''));
  } finally {
    await cluster.stopAll('SIGKILL');
  }
}

test('local cluster sets the flag', async () => {
  const entry = await startedEntryWith([]);
  assert.is(entry['singleThreadedGc'], true);
});

test('log shows the flag turned off', async () => {
  // The bench scripts document MEMBER_NODE_FLAGS=--no-single-threaded-gc for comparisons.
  const entry = await startedEntryWith(['--no-single-threaded-gc']);
  assert.is(entry['singleThreadedGc'], false);
});

test('flag check reads V8 spellings', () => {
  const cases: [string[], boolean][] = [
    [[], false],
    [['--single-threaded-gc'], true],
    [['--single_threaded_gc'], true],
    [['--single-threaded-gc', '--no-single-threaded-gc'], false],
    [['--single-threaded-gc', '--nosingle_threaded_gc'], false],
    [['--no-single-threaded-gc', '--single-threaded-gc'], true],
    [['--single-threaded'], true],
    [['--single-threaded', '--no-single-threaded-gc'], true],
    [['--single-threaded-gc', '--no-single-threaded'], true],
    [['--cpu-prof'], false],
  ];
  for (const [execArgv, expected] of cases) {
    assert.is(singleThreadedGcEnabled(execArgv), expected, execArgv.join(' ') || '(no flags)');
  }
});

test.run();
