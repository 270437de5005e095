import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType } from '../../src/consensus/types';
import type { Entry } from '../../src/consensus/types';
import { encodeEntryBatch } from '../../src/storage/entry-batch';
import type { StorageLogger } from '../../src/storage/logger';
import {
  raftLogFileName,
  raftLogFormatVersion,
  raftLogRowBytesMax,
  SqliteRaftLog,
} from '../../src/storage/raft-log';

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

/** Replaces the stored rows of the closed log in `dir`, as a bug or a hand edit might. */
function replaceRows(rows: readonly (readonly Entry[])[]): void {
  const raw = new Database(path.join(dir, raftLogFileName));
  raw.prepare('DELETE FROM batches').run();
  const insert = raw.prepare('INSERT INTO batches VALUES (?, ?, ?)');
  for (const row of rows) {
    insert.run(row[0]!.index, row.at(-1)!.index, encodeEntryBatch(row));
  }
  raw.close();
}

/** Returns the first and last index of each stored row of the closed log in `dir`. */
function storedRows(): number[][] {
  const raw = new Database(path.join(dir, raftLogFileName), { readonly: true });
  const rows = raw
    .prepare<[], { first_index: number; last_index: number }>(
      'SELECT first_index, last_index FROM batches ORDER BY first_index',
    )
    .all();
  raw.close();
  return rows.map((row) => [row.first_index, row.last_index]);
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

test('write and sync store entries and hard state', async () => {
  const log = SqliteRaftLog.open(dir);
  assert.is(log.write([], null), false);
  assert.ok(log.write(entries(1, 3, 1), { term: 1, vote: 'n1', commit: 0 }));
  assert.ok(log.write(entries(4, 5, 1), null));
  await log.sync();
  log.close();

  const reopened = SqliteRaftLog.open(dir);
  const state = reopened.load();
  reopened.close();
  assert.equal(state.hardState, { term: 1, vote: 'n1', commit: 0 });
  assert.equal(indexes(state.entries), [1, 2, 3, 4, 5]);
});

test('close while a sync is in flight keeps the data', async () => {
  const log = SqliteRaftLog.open(dir);
  log.write(entries(1, 50, 1), { term: 1, vote: '', commit: 0 });
  const synced = log.sync();
  log.close();
  await synced;
  const afterClose = await log.sync().then(
    () => 'resolved',
    (err: Error) => err.message,
  );
  assert.match(afterClose, /is closed/);

  const reopened = SqliteRaftLog.open(dir);
  assert.equal(indexes(reopened.load().entries), indexes(entries(1, 50, 1)));
  reopened.close();
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
  replaceRows([entries(1, 2, 1), entries(4, 6, 1)]);

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
  replaceRows([[entry(2, 1)], entries(7, 10, 1)]);

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
  replaceRows([[entry(1, 1), entry(2, 3), entry(3, 2)]]);
  const reopened = SqliteRaftLog.open(dir, recordingLogger());
  assert.equal(indexes(reopened.load().entries), [1, 2]);
  reopened.close();
});

test('log open elsewhere fails clearly', () => {
  const first = SqliteRaftLog.open(dir);
  try {
    assert.throws(() => SqliteRaftLog.open(dir), /failed to open Raft log .*raft\.db: another process has it open/);
  } finally {
    first.close();
  }
});

test('damaged log file fails with its name', () => {
  fs.writeFileSync(path.join(dir, raftLogFileName), Buffer.alloc(8192, 7));
  assert.throws(() => SqliteRaftLog.open(dir), /failed to open Raft log .*raft\.db/);
});

test('each persist stores one row per batch', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 5, 1), null);
  log.persist(entries(6, 8, 1), { term: 1, vote: null, commit: 8 });
  log.close();
  assert.equal(storedRows(), [
    [1, 5],
    [6, 8],
  ]);
});

test('persist inside a row keeps its prefix', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 5, 1), null);
  log.persist(entries(6, 7, 1), null);
  log.persist([entry(3, 2, 'new three'), entry(4, 2, 'new four')], null);
  log.close();
  assert.equal(storedRows(), [
    [1, 2],
    [3, 4],
  ]);
  const reopened = SqliteRaftLog.open(dir);
  const state = reopened.load();
  reopened.close();
  assert.equal(indexes(state.entries), [1, 2, 3, 4]);
  assert.equal(state.entries.map((e) => e.term), [1, 1, 2, 2]);
  assert.is(Buffer.from(state.entries[1]!.data).toString(), 'entry 2');
  assert.is(Buffer.from(state.entries[2]!.data).toString(), 'new three');
});

test('persist at the first index of a row replaces it', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 3, 1), null);
  log.persist(entries(4, 6, 1), null);
  log.persist([entry(4, 2, 'new four')], null);
  log.close();
  assert.equal(storedRows(), [
    [1, 3],
    [4, 4],
  ]);
});

test('compact keeps a row the log start cuts', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 5, 1), null);
  log.persist(entries(6, 10, 1), null);
  log.compact({ index: 7, term: 1 }, { index: 7, term: 1 });
  assert.equal(indexes(log.load().entries), [8, 9, 10]);
  log.persist([entry(9, 2, 'new nine')], null);
  log.close();
  assert.equal(storedRows(), [
    [6, 8],
    [9, 9],
  ]);
  const logger = recordingLogger();
  const reopened = SqliteRaftLog.open(dir, logger);
  const state = reopened.load();
  reopened.close();
  assert.equal(indexes(state.entries), [8, 9]);
  assert.equal(state.entries.map((e) => e.term), [1, 2]);
  assert.is(logger.warnings.length, 0, 'entries of a cut row below the log start are no error');
});

test('readEntries reads across rows', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 5, 1), null);
  log.persist(entries(6, 10, 2), null);
  const read = log.readEntries(4, 8, 1024);
  assert.equal(indexes(read), [4, 5, 6, 7, 8]);
  assert.equal(read.map((e) => e.term), [1, 1, 2, 2, 2]);
  assert.is(Buffer.from(read[0]!.data).toString(), 'entry 4');
  assert.equal(indexes(log.readEntries(10, 20, 1024)), [10], 'no entries after the last one');
  log.close();
});

test('readEntries stops at byte limit', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 10, 1), null);
  // Each entry's data is 7 or 8 bytes ("entry 1" to "entry 10").
  assert.equal(indexes(log.readEntries(1, 10, 15)), [1, 2]);
  assert.equal(indexes(log.readEntries(3, 10, 1)), [3]);
  log.close();
});

test('readEntries after compaction', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 5, 1), null);
  log.persist(entries(6, 10, 1), null);
  log.compact({ index: 7, term: 1 }, { index: 7, term: 1 });
  assert.equal(indexes(log.readEntries(8, 9, 1024)), [8, 9], 'from inside a row the log start cuts');
  assert.throws(() => log.readEntries(5, 9, 1024), /has no entry 5 to read/);
  assert.throws(() => log.readEntries(11, 12, 1024), /has no entry 11 to read/);
  log.close();
});

test('compact of every row allows the next index', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 5, 1), null);
  log.compact({ index: 5, term: 1 }, { index: 5, term: 1 });
  log.persist([entry(6, 1)], null);
  assert.equal(indexes(log.load().entries), [6]);
  log.close();
  assert.equal(storedRows(), [[6, 6]]);
});

test('large batch is split over rows', () => {
  const log = SqliteRaftLog.open(dir);
  const data = Buffer.alloc(raftLogRowBytesMax / 4, 9);
  const large: Entry[] = [];
  for (let index = 1; index <= 10; index++) {
    large.push({ index, term: 1, type: EntryType.Normal, data });
  }
  log.persist(large, null);
  log.close();
  const rows = storedRows();
  assert.ok(rows.length >= 3, `expected at least 3 rows, got ${rows.length}`);
  assert.is(rows[0]?.[0], 1);
  assert.is(rows.at(-1)?.[1], 10);
  const reopened = SqliteRaftLog.open(dir);
  const loaded = reopened.load().entries;
  reopened.close();
  assert.equal(indexes(loaded), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(loaded.every((e) => Buffer.from(e.data).equals(data)));
});

test('damaged row keeps its readable prefix', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 6, 1), null);
  log.close();
  const raw = new Database(path.join(dir, raftLogFileName));
  const blob = encodeEntryBatch(entries(1, 6, 1));
  // Cut inside entry 4: three whole entries of 13 + 7 bytes, then 5 bytes.
  raw.prepare('UPDATE batches SET entries = ? WHERE first_index = 1').run(blob.subarray(0, 65));
  raw.close();

  const logger = recordingLogger();
  const reopened = SqliteRaftLog.open(dir, logger);
  assert.equal(indexes(reopened.load().entries), [1, 2, 3]);
  reopened.persist([entry(4, 1, 'four again')], null);
  reopened.close();
  assert.is(logger.warnings.length, 1);
  const fields = JSON.stringify(logger.warnings[0]?.fields);
  assert.match(fields, /"droppedCount":3,"droppedIndexes":\[4,5,6\]/);
  assert.equal(storedRows(), [
    [1, 3],
    [4, 4],
  ]);
});

test('damaged row below the log start is deleted', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 10, 1), null);
  log.compact({ index: 5, term: 1 }, { index: 5, term: 1 });
  log.close();
  const raw = new Database(path.join(dir, raftLogFileName));
  const blob = encodeEntryBatch(entries(3, 10, 1));
  // Entries 3 and 4 stay readable; entry 5 and everything after are cut.
  raw.prepare('DELETE FROM batches').run();
  raw.prepare('INSERT INTO batches VALUES (3, 10, ?)').run(blob.subarray(0, 45));
  raw.close();

  const logger = recordingLogger();
  const reopened = SqliteRaftLog.open(dir, logger);
  assert.equal(reopened.load().entries, []);
  reopened.close();
  assert.match(JSON.stringify(logger.warnings[0]?.fields), /"droppedIndexes":\[6,7,8,9,10\]/);
  assert.equal(storedRows(), []);
});

test('unknown entry type cuts the log on load', () => {
  const log = SqliteRaftLog.open(dir);
  log.persist(entries(1, 4, 1), null);
  log.close();
  const third = { ...entry(3, 1), type: 7 as EntryType };
  replaceRows([[entry(1, 1), entry(2, 1), third, entry(4, 1)]]);
  const reopened = SqliteRaftLog.open(dir, recordingLogger());
  assert.equal(indexes(reopened.load().entries), [1, 2]);
  reopened.close();
  assert.equal(storedRows(), [[1, 2]]);
});

test('log of the earlier layout fails with its name', () => {
  const raw = new Database(path.join(dir, raftLogFileName));
  raw.exec('CREATE TABLE entries (idx INTEGER PRIMARY KEY, term INTEGER, type INTEGER, data BLOB)');
  raw.close();
  assert.throws(
    () => SqliteRaftLog.open(dir),
    /failed to open Raft log .*raft\.db: .*no layout version \(earlier builds stored one row/,
  );
});

test('log of an unknown layout version fails', () => {
  const log = SqliteRaftLog.open(dir);
  log.close();
  const raw = new Database(path.join(dir, raftLogFileName));
  raw.pragma(`user_version = ${raftLogFormatVersion + 1}`);
  raw.close();
  assert.throws(
    () => SqliteRaftLog.open(dir),
    new RegExp(
      `layout version ${raftLogFormatVersion + 1}, ` +
        `but this build reads only layout version ${raftLogFormatVersion}`,
    ),
  );
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
