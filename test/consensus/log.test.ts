// The in-memory Raft log: conflict search, appending from a leader, slicing,
// stages of persistence, compaction and the entry cache.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvariantError } from '../../src/consensus/assert';
import { RaftLog } from '../../src/consensus/log';
import type { Entry, EntryReader, RestoredState } from '../../src/consensus/types';
import { emptyRestoredState, entriesWithTerms } from './cluster';

function logWith(terms: readonly number[], commit = 0): RaftLog {
  const restored: RestoredState = {
    ...emptyRestoredState(),
    hardState: { term: 9, vote: null, commit },
    entries: entriesWithTerms(1, terms),
    appliedIndex: commit,
  };
  return new RaftLog(restored);
}

function sized(index: number, byteCount: number): Entry {
  return { index, term: 1, type: 0, data: new Uint8Array(byteCount) };
}

test('findConflictByTerm skips whole terms', () => {
  const log = logWith([1, 1, 1, 2, 2, 2, 4, 4]);
  assert.is(log.findConflictByTerm(8, 3), 6, 'last entry of term 2');
  assert.is(log.findConflictByTerm(8, 1), 3);
  assert.is(log.findConflictByTerm(5, 4), 5, 'already at or below the term');
  assert.is(log.findConflictByTerm(20, 9), 8, 'clamped to the last index');
  assert.is(log.findConflictByTerm(8, 0), 0, 'only the empty prefix has term 0');
});

test('findConflictByTerm stops at a compacted start', () => {
  const restored: RestoredState = {
    ...emptyRestoredState(),
    hardState: { term: 5, vote: null, commit: 10 },
    snapshot: { index: 10, term: 3 },
    logStart: { index: 10, term: 3 },
    entries: entriesWithTerms(11, [4, 5]),
    appliedIndex: 10,
  };
  const log = new RaftLog(restored);
  assert.is(log.findConflictByTerm(12, 2), 9, 'the match lies in compacted history');
  assert.is(log.findConflictByTerm(12, 4), 11);
  assert.is(log.findConflictByTerm(7, 4), 7, 'below the start the hint comes back unchanged');
});

test('appendFromLeader skips matching entries', () => {
  const log = logWith([1, 1, 2]);
  log.takeUnstable();
  const last = log.appendFromLeader(0, entriesWithTerms(1, [1, 1, 2]));
  assert.is(last, 3);
  assert.is(log.hasUnstable(), false, 'nothing is rewritten');
});

test('appendFromLeader truncates at the first conflict', () => {
  const log = logWith([1, 1, 2, 2, 2], 2);
  log.takeUnstable();
  log.appendFromLeader(2, entriesWithTerms(3, [2, 3]));
  assert.is(log.lastIndex, 4);
  assert.is(log.termAt(4), 3);
  assert.is(log.persistedIndex, 3, 'the replaced entries are no longer persisted');
  assert.equal(
    log.takeUnstable().map((e) => e.index),
    [4],
  );
});

test('appendFromLeader keeps a longer log without conflict', () => {
  const log = logWith([1, 1, 2, 2]);
  assert.is(log.appendFromLeader(1, entriesWithTerms(2, [1])), 2);
  assert.is(log.lastIndex, 4);
});

test('truncating a committed entry is an invariant violation', () => {
  const log = logWith([1, 1, 2], 3);
  assert.throws(
    () => log.appendFromLeader(1, entriesWithTerms(2, [5])),
    (error: unknown) => error instanceof InvariantError && /never truncate committed entries/.test(error.message),
  );
});

test('commit beyond the last index is an invariant violation', () => {
  const log = logWith([1, 1]);
  assert.throws(() => log.commitTo(3), /commit <= lastIndex/);
});

test('slice caps count and bytes but returns one entry', () => {
  const restored = { ...emptyRestoredState(), entries: [sized(1, 60), sized(2, 60), sized(3, 60), sized(4, 500)] };
  const log = new RaftLog(restored);
  assert.is(log.slice(1, 10, 130).length, 2, 'byte cap');
  assert.is(log.slice(1, 1, 1000).length, 1, 'count cap');
  assert.is(log.slice(4, 10, 100).length, 1, 'one oversized entry still goes');
});

test('stableTo ignores a Ready whose entries were replaced', () => {
  const log = logWith([]);
  log.appendFromLeader(0, entriesWithTerms(1, [1, 1, 1]));
  const handed = log.takeUnstable();
  log.appendFromLeader(1, entriesWithTerms(2, [2]));
  const last = handed[handed.length - 1] as Entry;
  log.stableTo(last.index, last.term);
  assert.is(log.persistedIndex, 0);
  log.stableTo(2, 2);
  assert.is(log.persistedIndex, 2);
});

test('committed entries are handed out once, in batches', () => {
  const log = logWith([1, 1, 1, 1, 1]);
  log.commitTo(5);
  assert.equal(
    log.takeCommitted(2).map((e) => e.index),
    [1, 2],
  );
  assert.equal(
    log.takeCommitted(10).map((e) => e.index),
    [3, 4, 5],
  );
  assert.equal(log.takeCommitted(10), []);
});

test('compact keeps a window and the snapshot term', () => {
  const log = logWith([1, 1, 2, 2, 3, 3], 5);
  const result = log.compact(5, 2);
  assert.equal(result.snapshot, { index: 5, term: 3 });
  assert.equal(result.logStart, { index: 3, term: 2 });
  assert.is(log.termAt(2), undefined);
  assert.is(log.termAt(3), 2);
  assert.is(log.lastIndex, 6);
  assert.throws(() => log.compact(1, 0), /cannot compact at index 1/);
});

/** An entry cache byte bound that no test log reaches. */
const noByteLimit = Number.MAX_SAFE_INTEGER;

/** Returns a reader over `stored` that records each read as [from, to]. */
function recordingReader(stored: readonly Entry[]): EntryReader & { reads: [number, number][] } {
  const reads: [number, number][] = [];
  return {
    reads,
    read(fromIndex, toIndex) {
      reads.push([fromIndex, toIndex]);
      return stored.filter((e) => e.index >= fromIndex && e.index <= toIndex);
    },
  };
}

test('entry cache drops data of applied entries', () => {
  const stored = entriesWithTerms(1, [1, 1, 1, 1, 1, 1]);
  const reader = recordingReader(stored);
  const restored: RestoredState = { ...emptyRestoredState(), hardState: { term: 1, vote: null, commit: 4 }, entries: stored, appliedIndex: 4 };
  const log = new RaftLog(restored, { reader, keepMax: 1, keepBytesMax: noByteLimit });
  assert.equal(log.slice(4, 10, 1000).map((e) => e.index), [4, 5, 6], 'kept entries come from memory');
  assert.equal(reader.reads, []);
  const read = log.slice(1, 10, 1000);
  assert.equal(read.map((e) => e.index), [1, 2, 3], 'dropped entries come from the reader, up to the last dropped one');
  assert.equal(read[0]?.data, stored[0]?.data);
  assert.equal(reader.reads, [[1, 3]]);
  assert.is(log.termAt(2), 1, 'dropped entries keep their term');
});

test('entry cache keeps unapplied, unpersisted entries', () => {
  const reader = recordingReader([]);
  const log = new RaftLog({ ...emptyRestoredState(), hardState: { term: 1, vote: null, commit: 0 } }, { reader, keepMax: 0, keepBytesMax: noByteLimit });
  log.append(entriesWithTerms(1, [1, 1, 1]));
  log.commitTo(3);
  assert.equal(log.takeUnstable().map((e) => e.index), [1, 2, 3]);
  assert.equal(log.takeCommitted(10).map((e) => e.index), [1, 2, 3]);
  log.appliedTo(3);
  assert.equal(log.slice(1, 10, 1000).map((e) => e.data.byteLength), [1, 1, 1], 'applied but not persisted');
  log.stableTo(2, 1);
  // Entries 1 and 2 are dropped now, and this reader has none of them.
  assert.throws(
    () => log.slice(1, 10, 1000),
    (error: unknown) => error instanceof InvariantError && /entry reader returns entries in range/.test(error.message),
  );
  assert.equal(reader.reads, [[1, 2]]);
});

test('dropped entries keep terms after compaction', () => {
  const stored = entriesWithTerms(1, [1, 1, 2, 2, 3, 3, 3]);
  const restored: RestoredState = { ...emptyRestoredState(), hardState: { term: 3, vote: null, commit: 7 }, entries: stored, appliedIndex: 7 };
  const log = new RaftLog(restored, { reader: recordingReader(stored), keepMax: 0, keepBytesMax: noByteLimit });
  assert.equal([1, 2, 3, 4, 5, 7].map((i) => log.termAt(i)), [1, 1, 2, 2, 3, 3]);
  assert.is(log.lastIndex, 7);
  assert.is(log.lastTerm, 3);
  assert.is(log.findConflictByTerm(7, 2), 4);
  const result = log.compact(6, 2);
  assert.equal(result.logStart, { index: 4, term: 2 });
  assert.equal([3, 4, 5, 6, 7].map((i) => log.termAt(i)), [undefined, 2, 3, 3, 3]);
  log.append(entriesWithTerms(8, [4]));
  assert.equal(log.slice(7, 10, 1000).map((e) => e.index), [7], 'a read stops at the last dropped entry');
  assert.equal(log.slice(8, 10, 1000).map((e) => e.term), [4]);
});

test('byte bound drops applied entries', () => {
  const stored = Array.from({ length: 10 }, (_, i) => sized(i + 1, 10));
  const reader = recordingReader(stored);
  const restored: RestoredState = { ...emptyRestoredState(), hardState: { term: 1, vote: null, commit: 10 }, entries: stored, appliedIndex: 10 };
  const log = new RaftLog(restored, { reader, keepMax: 100, keepBytesMax: 40 });
  // 100 bytes are above 40, so entries go until at most 30 bytes remain.
  assert.equal(log.slice(8, 10, 1000).map((e) => e.index), [8, 9, 10], 'the newest 30 bytes stay in memory');
  assert.equal(reader.reads, []);
  assert.equal(log.slice(1, 10, 1000).map((e) => e.index), [1, 2, 3, 4, 5, 6, 7], 'older entries come from the reader');
  assert.equal(reader.reads, [[1, 7]]);
});

test('byte bound keeps unapplied entries', () => {
  const reader = recordingReader([]);
  const log = new RaftLog({ ...emptyRestoredState(), hardState: { term: 1, vote: null, commit: 0 } }, { reader, keepMax: 100, keepBytesMax: 40 });
  log.append(Array.from({ length: 10 }, (_, i) => sized(i + 1, 10)));
  log.commitTo(10);
  assert.equal(log.takeUnstable().length, 10);
  log.stableTo(10, 1);
  assert.equal(log.slice(1, 10, 1000).length, 10, 'persisted but not applied: all in memory');
  assert.equal(log.takeCommitted(4).map((e) => e.index), [1, 2, 3, 4]);
  log.appliedTo(4);
  assert.equal(log.slice(5, 10, 1000).length, 6, 'unapplied entries stay');
  assert.throws(() => log.slice(1, 10, 1000), /entry reader returns entries in range/, 'the applied ones went');
  assert.equal(reader.reads, [[1, 4]]);
});

test('reader returning wrong entries fails', () => {
  const stored = entriesWithTerms(1, [1, 1, 1]);
  const wrongTerms = entriesWithTerms(1, [2, 2, 2]);
  const restored: RestoredState = { ...emptyRestoredState(), hardState: { term: 2, vote: null, commit: 3 }, entries: stored, appliedIndex: 3 };
  const log = new RaftLog(restored, { reader: recordingReader(wrongTerms), keepMax: 0, keepBytesMax: noByteLimit });
  assert.throws(
    () => log.slice(1, 10, 1000),
    (error: unknown) => error instanceof InvariantError && /entry reader returns the logged entries/.test(error.message),
  );
});

test.run();
