import { assertInvariant } from './assert';
import type { Entry, EntryReader, RestoredState, SnapshotMeta } from './types';

/** A run of dropped entries that share one term, named by its first index. */
interface TermRun {
  readonly index: number;
  readonly term: number;
}

/** The storage reader for dropped entry data, and how many applied entries keep theirs. */
export interface EntryCache {
  readonly reader: EntryReader;
  /** Applied entries that keep their data. */
  readonly keepMax: number;
  /** Bytes of entry data in memory above which applied entries are dropped even within `keepMax`. */
  readonly keepBytesMax: number;
}

/** Result of compaction, for the driver to record in storage. */
export interface Compaction {
  readonly snapshot: SnapshotMeta;
  readonly logStart: SnapshotMeta;
}

/**
 * The in-memory Raft log of one member: the entries after `logStart`, plus the
 * commit, applied and persisted positions over them.
 *
 * Entries move through three stages. An entry is unstable until ready() hands
 * it to the driver, in flight until advance() confirms the fsync, and
 * persisted after that. Terms never decrease along the log, which lets the
 * conflict search run as a binary search.
 *
 * With an entry cache, the log drops entries that are both applied and
 * persisted, except the newest `keepMax` of them, and keeps only their terms,
 * as runs. When the data of the entries in memory exceeds `keepBytesMax`, it
 * drops applied, persisted entries until a quarter of that is free. slice() reads dropped entries back from storage, so a follower a
 * long way behind costs a read instead of memory for every entry since the
 * last snapshot.
 *
 * Invariants: logStart.index <= snapshot.index <= commit <= lastIndex, and
 * applied <= commit. Between installing a snapshot and its advance(), applied
 * is below snapshot.index. Entries up to releasedIndex are dropped, and
 * logStart.index <= releasedIndex <= min(applied, persisted).
 */
export class RaftLog {
  private logStartMeta: SnapshotMeta;
  private snapshotMeta: SnapshotMeta;
  /** entries[i].index === releasedIndex + 1 + i. */
  private entries: Entry[];
  private persistedIndexValue: number;
  /** First index not yet handed to the driver in a Ready. */
  private unstableIndex: number;
  private commitIndexValue: number;
  private appliedIndexValue: number;
  /** Last index handed to the driver as a committed entry. */
  private handedCommittedIndex: number;
  /** Last dropped index; at least logStart.index. */
  private releasedIndex: number;
  /** Terms of the dropped entries after logStart, one run per term, in index order. */
  private releasedTerms: TermRun[] = [];
  /** Bytes of data of `entries`. */
  private entryBytes = 0;
  /**
   * Entries at the front of `entries` that release() has summed, and their
   * bytes, so no entry is summed twice. Both are zero after the front changes.
   */
  private scannedCount = 0;
  private scannedBytes = 0;

  constructor(
    restored: RestoredState,
    private readonly cache: EntryCache | null = null,
  ) {
    this.logStartMeta = restored.logStart;
    this.snapshotMeta = restored.snapshot;
    this.releasedIndex = restored.logStart.index;
    this.entries = [...restored.entries];
    this.checkContiguous(this.entries, restored.logStart.index + 1);
    this.entryBytes = dataBytes(this.entries);
    this.persistedIndexValue = this.lastIndex;
    this.unstableIndex = this.lastIndex + 1;
    this.appliedIndexValue = restored.appliedIndex;
    // A snapshot may be newer than the commit index stored with the hard state.
    this.commitIndexValue = Math.max(restored.hardState.commit, restored.appliedIndex, restored.snapshot.index);
    this.handedCommittedIndex = restored.appliedIndex;
    assertInvariant(restored.logStart.index <= restored.snapshot.index, 'logStart <= snapshot on restore', {
      logStart: restored.logStart.index,
      snapshot: restored.snapshot.index,
    });
    assertInvariant(restored.snapshot.index <= restored.appliedIndex, 'snapshot <= applied on restore', {
      snapshot: restored.snapshot.index,
      applied: restored.appliedIndex,
    });
    this.checkCommitBounds();
    this.release();
  }

  get logStart(): SnapshotMeta {
    return this.logStartMeta;
  }

  get snapshot(): SnapshotMeta {
    return this.snapshotMeta;
  }

  get lastIndex(): number {
    return this.releasedIndex + this.entries.length;
  }

  get lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined) return last.term;
    return this.releasedTerms.at(-1)?.term ?? this.logStartMeta.term;
  }

  get commitIndex(): number {
    return this.commitIndexValue;
  }

  get appliedIndex(): number {
    return this.appliedIndexValue;
  }

  /** Last index the driver confirmed as fsync'd. */
  get persistedIndex(): number {
    return this.persistedIndexValue;
  }

  /** Returns the term at `index`, or undefined when it is compacted or beyond the end. */
  termAt(index: number): number | undefined {
    if (index === this.logStartMeta.index) return this.logStartMeta.term;
    if (index < this.logStartMeta.index || index > this.lastIndex) return undefined;
    if (index <= this.releasedIndex) return this.releasedTermAt(index);
    return this.entryAt(index).term;
  }

  /**
   * Returns whether a log ending at (lastIndex, lastTerm) is at least as up to
   * date as this one: a later last term, or the same term and no shorter.
   */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ownTerm = this.lastTerm;
    return lastTerm > ownTerm || (lastTerm === ownTerm && lastIndex >= this.lastIndex);
  }

  /**
   * Returns the largest index at or below `index` whose term is at most `term`,
   * searching down to logStart. Returns logStart.index - 1 when even logStart
   * has a later term, so the caller knows the match lies in compacted history.
   */
  findConflictByTerm(index: number, term: number): number {
    let low = this.logStartMeta.index;
    let high = Math.min(index, this.lastIndex);
    if (high < low) return high;
    if (this.logStartMeta.term > term) return low - 1;
    // Terms never decrease along the log: find the last index with term <= `term`.
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if ((this.termAt(middle) ?? 0) <= term) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  /**
   * Returns the entries from `fromIndex` on, at most `countMax` of them and at
   * most `bytesMax` bytes of data, but always one entry when any exists.
   */
  slice(fromIndex: number, countMax: number, bytesMax: number): Entry[] {
    assertInvariant(fromIndex > this.logStartMeta.index, 'slice starts after logStart', {
      fromIndex,
      logStart: this.logStartMeta.index,
    });
    if (fromIndex <= this.releasedIndex) return this.readReleased(fromIndex, countMax, bytesMax);
    const begin = fromIndex - this.releasedIndex - 1;
    const end = Math.min(this.entries.length, begin + countMax);
    let bytes = 0;
    let stop = begin;
    while (stop < end) {
      const size = (this.entries[stop] as Entry).data.byteLength;
      if (stop > begin && bytes + size > bytesMax) break;
      bytes += size;
      stop += 1;
    }
    return this.entries.slice(begin, stop);
  }

  /** Reads entries whose data was dropped back from storage, checking their index and term. */
  private readReleased(fromIndex: number, countMax: number, bytesMax: number): Entry[] {
    const toIndex = Math.min(this.releasedIndex, fromIndex + countMax - 1);
    const entries = (this.cache as EntryCache).reader.read(fromIndex, toIndex, bytesMax);
    assertInvariant(entries.length > 0 && entries.length <= toIndex - fromIndex + 1, 'entry reader returns entries in range', {
      fromIndex,
      toIndex,
      count: entries.length,
    });
    entries.forEach((entry, i) => {
      const index = fromIndex + i;
      const term = this.releasedTermAt(index);
      assertInvariant(entry.index === index && entry.term === term, 'entry reader returns the logged entries', {
        index,
        term,
        readIndex: entry.index,
        readTerm: entry.term,
      });
    });
    return entries;
  }

  /** Appends entries of the leader's own term at the end (leader append-only). */
  append(entries: readonly Entry[]): void {
    this.checkContiguous(entries, this.lastIndex + 1);
    for (const entry of entries) this.entries.push(entry);
    this.entryBytes += dataBytes(entries);
  }

  /**
   * Appends a leader's entries that follow `prevIndex`, which the caller found
   * to match. Entries already present with the same term are skipped. The log
   * is truncated only at the first entry whose term differs. Returns the index
   * of the last entry of the request.
   */
  appendFromLeader(prevIndex: number, entries: readonly Entry[]): number {
    this.checkContiguous(entries, prevIndex + 1);
    let first = 0;
    while (first < entries.length) {
      const entry = entries[first] as Entry;
      if (entry.index > this.lastIndex) break;
      if (this.termAt(entry.index) !== entry.term) {
        this.truncateFrom(entry.index);
        break;
      }
      first += 1;
    }
    for (let i = first; i < entries.length; i += 1) {
      const entry = entries[i] as Entry;
      this.entries.push(entry);
      this.entryBytes += entry.data.byteLength;
    }
    return prevIndex + entries.length;
  }

  /** Raises the commit index to `index` and returns whether it moved. */
  commitTo(index: number): boolean {
    if (index <= this.commitIndexValue) return false;
    assertInvariant(index <= this.lastIndex, 'commit <= lastIndex', { commit: index, lastIndex: this.lastIndex });
    this.commitIndexValue = index;
    return true;
  }

  hasUnstable(): boolean {
    return this.unstableIndex <= this.lastIndex;
  }

  /** Hands out the entries not yet given to the driver. */
  takeUnstable(): Entry[] {
    if (!this.hasUnstable()) return [];
    const begin = this.unstableIndex - this.releasedIndex - 1;
    this.unstableIndex = this.lastIndex + 1;
    return this.entries.slice(begin);
  }

  hasCommittedToHand(): boolean {
    return this.handedCommittedIndex < this.commitIndexValue;
  }

  /**
   * Hands out up to `countMax` committed entries not yet given to the driver,
   * none above `upTo`. Committed entries that are still unstable go out in
   * the same Ready as their persisting, and the driver applies only after it
   * fsyncs.
   */
  takeCommitted(countMax: number, upTo = Infinity): Entry[] {
    const from = this.handedCommittedIndex + 1;
    const to = Math.min(this.commitIndexValue, this.handedCommittedIndex + countMax, upTo);
    if (to < from) return [];
    assertInvariant(from > this.logStartMeta.index, 'committed entries to apply are not compacted', {
      from,
      logStart: this.logStartMeta.index,
    });
    assertInvariant(from > this.releasedIndex, 'committed entries to apply keep their data', {
      from,
      releasedIndex: this.releasedIndex,
    });
    this.handedCommittedIndex = to;
    const begin = from - this.releasedIndex - 1;
    return this.entries.slice(begin, begin + (to - from + 1));
  }

  /**
   * Records the fsync of entries up to (index, term). It is skipped when a
   * conflicting leader replaced that entry after ready() handed it out.
   */
  stableTo(index: number, term: number): void {
    if (index <= this.persistedIndexValue || this.termAt(index) !== term) return;
    this.persistedIndexValue = index;
    this.release();
  }

  appliedTo(index: number): void {
    if (index <= this.appliedIndexValue) return;
    assertInvariant(index <= this.commitIndexValue, 'applied <= commit', {
      applied: index,
      commit: this.commitIndexValue,
    });
    this.appliedIndexValue = index;
    this.release();
  }

  /**
   * Drops applied, persisted entries beyond the newest `keepMax` of them,
   * keeping their terms. It waits until a quarter of `keepMax` can go at once,
   * so that it runs every few thousand entries, not at every Ready. Above
   * `keepBytesMax` bytes of data it drops the oldest such entries until a
   * quarter of `keepBytesMax` is free.
   */
  private release(): void {
    if (this.cache === null) return;
    const releasable = Math.min(this.appliedIndexValue, this.persistedIndexValue, this.handedCommittedIndex) - this.releasedIndex;
    let count = releasable - this.cache.keepMax;
    if (count < Math.max(1, this.cache.keepMax / 4)) count = 0;
    if (this.entryBytes > this.cache.keepBytesMax) {
      const goal = this.entryBytes - (this.cache.keepBytesMax * 3) / 4;
      while (this.scannedBytes < goal && this.scannedCount < releasable) {
        this.scannedBytes += (this.entries[this.scannedCount++] as Entry).data.byteLength;
      }
      // Entries not yet applied or persisted may take up most of the bytes, so
      // the goal can be out of reach. Then entries go only once a quarter of
      // the bound can, so that the splice below stays rare.
      if (this.scannedBytes >= goal || this.scannedBytes >= this.cache.keepBytesMax / 4) count = Math.max(count, this.scannedCount);
    }
    if (count <= 0) return;
    let bytes = 0;
    for (let i = 0; i < count; i += 1) {
      const entry = this.entries[i] as Entry;
      bytes += entry.data.byteLength;
      if (entry.term !== this.releasedTerms.at(-1)?.term) this.releasedTerms.push({ index: entry.index, term: entry.term });
    }
    // Moves the kept entries (keepMax plus those not yet applied) once per keepMax / 4 dropped ones.
    this.entries.splice(0, count);
    this.entryBytes -= bytes;
    this.releasedIndex += count;
    this.resetScan();
  }

  private resetScan(): void {
    this.scannedCount = 0;
    this.scannedBytes = 0;
  }

  /** Returns the term of a dropped entry, from the last run that starts at or before it. */
  private releasedTermAt(index: number): number {
    const runs = this.releasedTerms;
    let low = 0;
    let high = runs.length - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if ((runs[middle] as TermRun).index <= index) low = middle;
      else high = middle - 1;
    }
    const run = runs[low];
    assertInvariant(run !== undefined && run.index <= index && index <= this.releasedIndex, 'dropped entry has a term run', {
      index,
      releasedIndex: this.releasedIndex,
    });
    return (run as TermRun).term;
  }

  /**
   * Replaces the whole log with a snapshot to install. The driver installs it
   * before anything else in the Ready, so it counts as persisted. The applied
   * index moves when advance() confirms the install.
   */
  restore(snapshot: SnapshotMeta): void {
    assertInvariant(snapshot.index > this.commitIndexValue, 'installed snapshot is newer than commit', {
      snapshot: snapshot.index,
      commit: this.commitIndexValue,
    });
    this.entries = [];
    this.entryBytes = 0;
    this.resetScan();
    this.logStartMeta = snapshot;
    this.snapshotMeta = snapshot;
    this.persistedIndexValue = snapshot.index;
    this.unstableIndex = snapshot.index + 1;
    this.commitIndexValue = snapshot.index;
    this.handedCommittedIndex = snapshot.index;
    this.releasedIndex = snapshot.index;
    this.releasedTerms = [];
  }

  /**
   * Records a state machine snapshot at `snapshotIndex` and drops the entries
   * at or below snapshotIndex - keepEntries. An older snapshot index keeps the
   * current snapshot but may still drop entries.
   */
  compact(snapshotIndex: number, keepEntries: number): Compaction {
    const snapshotTerm = this.termAt(snapshotIndex);
    if (snapshotTerm === undefined) {
      throw new RangeError(
        `cannot compact at index ${snapshotIndex}: not in the log, which contains indexes ${this.logStartMeta.index} to ${this.lastIndex}`,
      );
    }
    if (snapshotIndex > this.snapshotMeta.index) {
      this.snapshotMeta = { index: snapshotIndex, term: snapshotTerm };
    }
    const startIndex = Math.max(this.logStartMeta.index, snapshotIndex - keepEntries);
    const startTerm = this.termAt(startIndex) as number;
    if (startIndex >= this.releasedIndex) {
      this.entries = this.entries.slice(startIndex - this.releasedIndex);
      this.entryBytes = dataBytes(this.entries);
      this.resetScan();
      this.releasedIndex = startIndex;
      this.releasedTerms = [];
    } else {
      this.dropTermRunsThrough(startIndex);
    }
    this.logStartMeta = { index: startIndex, term: startTerm };
    return { snapshot: this.snapshotMeta, logStart: this.logStartMeta };
  }

  /** Drops the term runs of indexes at or below `index`, which is below releasedIndex. */
  private dropTermRunsThrough(index: number): void {
    const runs = this.releasedTerms;
    let first = 0;
    // A run ends where the next one starts; skip those that end at or below `index`.
    while (first + 1 < runs.length && (runs[first + 1] as TermRun).index <= index + 1) first += 1;
    const remaining = runs.slice(first);
    const head = remaining[0] as TermRun;
    if (head.index <= index) remaining[0] = { index: index + 1, term: head.term };
    this.releasedTerms = remaining;
  }

  private entryAt(index: number): Entry {
    return this.entries[index - this.releasedIndex - 1] as Entry;
  }

  private truncateFrom(index: number): void {
    assertInvariant(index > this.commitIndexValue, 'never truncate committed entries', {
      truncateFrom: index,
      commit: this.commitIndexValue,
    });
    const remaining = index - this.releasedIndex - 1;
    this.entryBytes -= dataBytes(this.entries.slice(remaining));
    this.entries.length = remaining;
    this.unstableIndex = Math.min(this.unstableIndex, index);
    this.persistedIndexValue = Math.min(this.persistedIndexValue, index - 1);
  }

  private checkContiguous(entries: readonly Entry[], firstIndex: number): void {
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first === undefined || last === undefined) return;
    assertInvariant(
      first.index === firstIndex && last.index === firstIndex + entries.length - 1,
      'entries are contiguous after the log end',
      { expectedFirst: firstIndex, first: first.index, last: last.index, count: entries.length },
    );
  }

  private checkCommitBounds(): void {
    assertInvariant(this.commitIndexValue <= this.lastIndex, 'commit <= lastIndex', {
      commit: this.commitIndexValue,
      lastIndex: this.lastIndex,
    });
  }
}

/** Returns the bytes of data of `entries`. */
export function dataBytes(entries: readonly Entry[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += entry.data.byteLength;
  return bytes;
}
