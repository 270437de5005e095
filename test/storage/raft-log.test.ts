import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType } from '../../src/consensus/types';
import type { Entry } from '../../src/consensus/types';
import type { StorageLogger } from '../../src/storage/logger';
import { raftLogFileName, SqliteRaftLog } from '../../src/storage/raft-log';

let dir = '';

test.before.each(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-raft-log-'));
});

test.after.each(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function entry(index: number, term: number, text = `entry ${index}`): Entry {
  return { index, term, type: EntryType.Normal, data: Buffer.from(text) };
}

function entries(first: number, last: number, term: number): Entry[] {
  const list: Entry[] = [];
  for (let index = first; index <= last; index++) list.push(entry(index, term));
  return list;
}

function indexes(list: readonly Entry[]): number[] {
  return list.map((e) => e.index);
}

interface LogRecord {
  readonly fields: object;
  readonly message: string;
}

function recordingLogger(): StorageLogger & { readonly warnings: LogRecord[] } {
  const warnings: LogRecord[] = [];
  return {
    warnings,
    info: () => undefined,
    warn: (fields, message) => warnings.push({ fields, message }),
  };
}

test('new log loads empty state', () => {
  const log = SqliteRaftLog.open(dir);
  const state = log.load();
  log.close();
  assert.equal(state.hardState, { term: 0, vote: null, commit: 0 });
  assert.equal(state.snapshot, { index: 0, term: 0 });
  assert.equal(state.logStart, { index: 0, term: 0 });
  assert.equal(state.entries, []);
  assert.ok(fs.existsSync(path.join(dir, raftLogFileName)));
});

test('open creates missing folders', () => {
  const nested = path.join(dir, 'a', 'b');
  const log = SqliteRaftLog.open(nested);
  log.close();
  assert.ok(fs.existsSync(path.join(nested, raftLogFileName)));
});

test('persist and load round trip after reopen', () => {
  const log = SqliteRaftLog.open(dir);
  const noop: Entry = { index: 1, term: 1, type: EntryType.Noop, data: new Uint8Array(0) };
  const written = [noop, entry(2, 1, 'two'), entry(3, 2, 'three')];
  log.persist(written, { term: 2, vote: 'n2', commit: 2 });
  log.close();

  const reopened = SqliteRaftLog.open(dir);
  const state = reopened.load();
  reopened.close();
  assert.equal(state.hardState, { term: 2, vote: 'n2', commit: 2 });
  assert.is(state.entries.length, 3);
  state.entries.forEach((loaded, i) => {
    const expected = written[i]!;
    assert.is(loaded.index, expected.index);
    assert.is(loaded.term, expected.term);
    assert.is(loaded.type, expected.type);
    assert.equal(Buffer.from(loaded.data), Buffer.from(expected.data));
  });
});

test('persist accepts a plain Uint8Array as data', () => {
  const log = SqliteRaftLog.open(dir);
  const data = new Uint8Array([0, 1, 2, 255]);
  log.persist([{ index: 1, term: 1, type: EntryType.Normal, data }], null);
  const loaded = log.load().entries[0];
  log.close();
  assert.equal(Array.from(loaded?.data ?? []), [0, 1, 2, 255]);
});

test('persist at a lower index deletes the tail', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 5, 1), null);
  log.persist([entry(3, 2, 'new three'), entry(4, 2, 'new four')], null);
  const state = log.load();
  log.close();
  assert.equal(indexes(state.entries), [1, 2, 3, 4]);
  assert.equal(state.entries.map((e) => e.term), [1, 1, 2, 2]);
  assert.is(Buffer.from(state.entries[2]!.data).toString(), 'new three');
});

test('hard state persists without entries', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 2, 1), { term: 1, vote: null, commit: 0 });
  log.persist([], { term: 3, vote: 'n1', commit: 2 });
  log.close();
  const reopened = SqliteRaftLog.open(dir);
  const state = reopened.load();
  reopened.close();
  assert.equal(state.hardState, { term: 3, vote: 'n1', commit: 2 });
  assert.equal(indexes(state.entries), [1, 2]);
});

test('persist rejects a gap or unordered entries', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 4, 1), null);
  assert.throws(() => log.persist([entry(6, 1)], null), /must start in \[1, 5\], got 6/);
  assert.throws(() => log.persist([entry(5, 1), entry(7, 1)], null), /contiguous/);
  const state = log.load();
  log.close();
  assert.equal(indexes(state.entries), [1, 2, 3, 4]);
});

test('compact keeps entries after the log start', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 10, 1), { term: 1, vote: 'n1', commit: 10 });
  log.compact({ index: 8, term: 1 }, { index: 6, term: 1 });
  log.close();
  const reopened = SqliteRaftLog.open(dir);
  const state = reopened.load();
  assert.equal(state.snapshot, { index: 8, term: 1 });
  assert.equal(state.logStart, { index: 6, term: 1 });
  assert.equal(indexes(state.entries), [7, 8, 9, 10]);
  assert.throws(() => reopened.persist([entry(6, 1)], null), /must start in \[7, 11\]/);
  assert.throws(
    () => reopened.compact({ index: 8, term: 1 }, { index: 9, term: 1 }),
    /must not be above snapshot index 8/,
  );
  assert.throws(
    () => reopened.compact({ index: 9, term: 1 }, { index: 5, term: 1 }),
    /must not be below the stored log start 6/,
  );
  reopened.close();
});

test('installSnapshot replaces the whole log', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 5, 1), { term: 2, vote: null, commit: 3 });
  log.installSnapshot({ index: 20, term: 2 });
  let state = log.load();
  assert.equal(state.entries, []);
  assert.equal(state.snapshot, { index: 20, term: 2 });
  assert.equal(state.logStart, { index: 20, term: 2 });
  assert.equal(state.hardState, { term: 2, vote: null, commit: 20 });

  log.persist([entry(21, 2)], null);
  log.close();
  const reopened = SqliteRaftLog.open(dir);
  state = reopened.load();
  reopened.close();
  assert.equal(indexes(state.entries), [21]);
});

test('installSnapshot keeps a higher commit index', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 30, 1), { term: 1, vote: null, commit: 30 });
  log.installSnapshot({ index: 20, term: 1 });
  const state = log.load();
  log.close();
  assert.is(state.hardState.commit, 30);
});

test('gap in stored entries is dropped on load', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 6, 1), null);
  log.close();
  const raw = new Database(path.join(dir, raftLogFileName));
  raw.prepare('DELETE FROM entries WHERE idx = 3').run();
  raw.close();

  const logger = recordingLogger();
  const reopened = SqliteRaftLog.open(dir, logger);
  const state = reopened.load();
  reopened.close();
  assert.equal(indexes(state.entries), [1, 2]);
  assert.is(logger.warnings.length, 1);
  assert.match(JSON.stringify(logger.warnings[0]?.fields), /"droppedIndexes":\[4,5,6\]/);

  const again = SqliteRaftLog.open(dir, logger);
  assert.equal(indexes(again.load().entries), [1, 2]);
  again.close();
  assert.is(logger.warnings.length, 1, 'the dropped rows are deleted, not only skipped');
});

test('entries not following the log start are dropped', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 10, 1), null);
  log.compact({ index: 5, term: 1 }, { index: 5, term: 1 });
  log.close();
  const raw = new Database(path.join(dir, raftLogFileName));
  raw.prepare('DELETE FROM entries WHERE idx = 6').run();
  raw.prepare("INSERT INTO entries VALUES (2, 1, 0, x'00')").run();
  raw.close();

  const logger = recordingLogger();
  const reopened = SqliteRaftLog.open(dir, logger);
  const state = reopened.load();
  reopened.close();
  assert.equal(state.entries, []);
  assert.match(JSON.stringify(logger.warnings[0]?.fields), /"droppedIndexes":\[2,7,8,9,10\]/);
});

test('decreasing term cuts the log on load', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist([entry(1, 1), entry(2, 3), entry(3, 3)], null);
  log.close();
  const raw = new Database(path.join(dir, raftLogFileName));
  raw.prepare('UPDATE entries SET term = 2 WHERE idx = 3').run();
  raw.close();
  const reopened = SqliteRaftLog.open(dir, recordingLogger());
  assert.equal(indexes(reopened.load().entries), [1, 2]);
  reopened.close();
});

test('damaged log file fails with its name', () => {
  fs.writeFileSync(path.join(dir, raftLogFileName), Buffer.alloc(8192, 7));
  assert.throws(() => SqliteRaftLog.open(dir), /failed to open Raft log .*raft\.db/);
});

test('persist throughput (printed, not asserted)', () => {
  const log = SqliteRaftLog.open(dir);
  const total = 20_000;
  const batchSize = 500;
  const data = Buffer.alloc(100, 1);
  const started = performance.now();
  for (let first = 1; first <= total; first += batchSize) {
    const batch: Entry[] = [];
    for (let index = first; index < first + batchSize; index++) {
      batch.push({ index, term: 1, type: EntryType.Normal, data });
    }
    log.persist(batch, { term: 1, vote: 'n1', commit: first - 1 });
  }
  const elapsedMs = performance.now() - started;
  log.close();
  const perSecond = Math.round((total / elapsedMs) * 1000);
  console.log(
    `persist: ${total} entries of 100 bytes in batches of ${batchSize}: ${elapsedMs.toFixed(0)} ms, ${perSecond} entries/s`,
  );
});

test.run();
