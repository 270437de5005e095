// The catch-up log lines of a restarting member, written to a captured pino log.
import { Writable } from 'node:stream';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppendRequest, Entry, RestoredState } from '../../src/consensus/types';
import { CatchUpReporter } from '../../src/node/catch-up-reporter';

interface LogLine {
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** Returns a logger and the lines it wrote, parsed. */
function capturedLog(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as LogLine);
      done();
    },
  });
  return { log: pino(sink), lines };
}

function entries(first: number, last: number): Entry[] {
  const list: Entry[] = [];
  for (let index = first; index <= last; index++) list.push({ index, term: 1, type: 0, data: new Uint8Array(1) });
  return list;
}

function append(first: number, last: number, commit: number): AppendRequest {
  return { type: 'append', from: 'n2', to: 'n1', term: 1, prevLogIndex: first - 1, prevLogTerm: 1, entries: entries(first, last), commit };
}

/** Returns the restored state of a member whose log and state end at `index`. */
function restoredAt(index: number): RestoredState {
  return {
    hardState: { term: 1, vote: null, commit: index },
    snapshot: { index: 0, term: 0 },
    logStart: { index: 0, term: 0 },
    entries: entries(1, index),
    appliedIndex: index,
  };
}

test('reports the entries written, not those sent', () => {
  const { log, lines } = capturedLog();
  const reporter = new CatchUpReporter(log, restoredAt(10), 10);
  // A probe the follower rejects carries entries that are never written.
  reporter.observe(append(50, 60, 30));
  reporter.observe(append(11, 30, 30));
  reporter.persisted(entries(11, 30));
  const received = lines.find((line) => line.msg === 'received entries from the leader');
  assert.ok(received, 'a progress line');
  assert.is(received.fromIndex, 11);
  assert.is(received.toIndex, 30);
  assert.is(received.entries, 20);
  assert.is(received.leaderId, 'n2');
  assert.ok(lines.some((line) => line.msg === 'caught up with the leader'));
});

test('snapshot at leader commit catches up', () => {
  const { log, lines } = capturedLog();
  const reporter = new CatchUpReporter(log, restoredAt(10), 10);
  reporter.installedSnapshot(5000, 5000);
  const caughtUp = lines.find((line) => line.msg === 'caught up with the leader');
  assert.ok(caughtUp, 'a caught-up line');
  assert.is(caughtUp.snapshotIndex, 5000);
  assert.is(caughtUp.leaderCommit, 5000);
  // Later appends are not a catch-up.
  reporter.observe(append(5001, 5010, 5010));
  reporter.persisted(entries(5001, 5010));
  assert.is(lines.length, 1);
});

test('snapshot behind leader waits for entries', () => {
  const { log, lines } = capturedLog();
  const reporter = new CatchUpReporter(log, restoredAt(10), 10);
  reporter.installedSnapshot(5000, 5200);
  assert.equal(lines, []);
  reporter.observe(append(5001, 5200, 5200));
  reporter.persisted(entries(5001, 5200));
  assert.ok(lines.some((line) => line.msg === 'caught up with the leader'));
});

test('ignores writes before leader appends', () => {
  const { log, lines } = capturedLog();
  const reporter = new CatchUpReporter(log, restoredAt(10), 10);
  reporter.persisted(entries(11, 12));
  assert.equal(lines, []);
});

test('a former leader logs no catch-up', () => {
  const { log, lines } = capturedLog();
  const reporter = new CatchUpReporter(log, restoredAt(10), 10);
  reporter.becameLeader();
  // After a handover, the new leader's appends reach the old one.
  reporter.observe(append(11, 30, 30));
  reporter.persisted(entries(11, 30));
  assert.equal(lines.map((line) => line.msg), []);
});

test.run();
