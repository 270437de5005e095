// Members that `replog cluster` starts run with Node's --single-threaded-gc,
// the "member started" log line shows whether the flag is on, and a member
// without it on 2 cores or fewer logs a warning.
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

type LogEntry = Record<string, unknown>;

/** Returns the JSON log entries up to "member started", or null when that entry is not there yet. */
function entriesToStart(log: string): LogEntry[] | null {
  // The text after the last newline may be a line the member is still writing.
  const lines = log.split('\n').slice(0, -1);
  const entries: LogEntry[] = [];
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as LogEntry;
    entries.push(entry);
    if (entry['msg'] === 'member started') return entries;
  }
  return null;
}

/** Polls `readLog` until it contains the "member started" entry, for up to 20 s, and returns the entries to it. */
async function waitForStart(readLog: () => string): Promise<LogEntry[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const entries = entriesToStart(readLog());
    if (entries !== null) return entries;
    if (Date.now() > deadline) throw new Error(`no "member started" line in:\n${readLog()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts a one-member LocalCluster with `nodeFlags` and returns its log entries up to "member started". */
async function entriesToStartWith(nodeFlags: string[]): Promise<LogEntry[]> {
  const cluster = await LocalCluster.create({ dataDir: dir, size: 1, basePort: 0, withHaproxy: false, nodeFlags });
  try {
    cluster.startAll();
    const logFile = cluster.member('n1').logFile;
    return await waitForStart(() => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''));
  } finally {
    await cluster.stopAll('SIGKILL');
  }
}

/** Returns the warning about a missing --single-threaded-gc among `entries`, if any. */
function gcWarning(entries: readonly LogEntry[]): LogEntry | undefined {
  return entries.find((entry) => entry['level'] === 40 && String(entry['msg']).includes('without --single-threaded-gc'));
}

test('local cluster sets the flag', async () => {
  const entries = await entriesToStartWith([]);
  assert.is(entries[entries.length - 1]!['singleThreadedGc'], true);
  assert.is(gcWarning(entries), undefined, 'no warning with the flag');
});

test('log shows the flag turned off', async () => {
  // The bench scripts document MEMBER_NODE_FLAGS=--no-single-threaded-gc for comparisons.
  const entries = await entriesToStartWith(['--no-single-threaded-gc']);
  assert.is(entries[entries.length - 1]!['singleThreadedGc'], false);
  const warning = gcWarning(entries);
  const cores = os.availableParallelism();
  if (cores <= 2) {
    assert.ok(warning, 'a warning on 2 cores or fewer');
    assert.is(warning['cores'], cores);
    assert.match(String(warning['msg']), /start it with node --single-threaded-gc/);
  } else {
    assert.is(warning, undefined, `no warning on ${cores} cores`);
  }
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
