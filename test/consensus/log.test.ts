// The in-memory Raft log: conflict search, appending from a leader, slicing,
// stages of persistence and compaction.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvariantError } from '../../src/consensus/assert';
import { RaftLog } from '../../src/consensus/log';
import type { Entry, RestoredState } from '../../src/consensus/types';
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

test.run();
