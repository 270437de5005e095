// Reading the rows of raft.db back into a log: the entries that follow the log
// start without a gap, and what load() must delete because it does not.
import { EntryType } from '../consensus/types';
import type { Entry, SnapshotMeta } from '../consensus/types';
import { decodeEntryBatch } from './entry-batch';
import type { StoredEntry } from './entry-batch';

/** Dropped indexes listed in the warning of load(); the count covers the rest. */
export const droppedIndexesLoggedMax = 20;

/** One row of the batches table: consecutive entries firstIndex..lastIndex. */
export interface BatchRow {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly entries: Buffer;
}

/** The outcome of scanning the rows of a log. */
export interface LogScan {
  /** The valid stored entries after the log start, in index order. */
  readonly entries: Entry[];
  /** The first index after the log start that is stored but not valid, or null. */
  readonly firstBrokenIndex: number | null;
  /** How many stored indexes are dropped, stale rows included. */
  readonly droppedCount: number;
  /** The first droppedIndexesLoggedMax dropped indexes, in row order. */
  readonly droppedIndexes: readonly number[];
}

function isKnownEntryType(type: number): type is EntryType {
  return type === EntryType.Normal || type === EntryType.Noop;
}

/** Mutable state of one scan. */
class Scanner {
  readonly entries: Entry[] = [];
  firstBrokenIndex: number | null = null;
  droppedCount = 0;
  readonly droppedIndexes: number[] = [];
  private previous: SnapshotMeta;

  constructor(private readonly logStart: SnapshotMeta) {
    this.previous = logStart;
  }

  addRow(row: BatchRow): void {
    if (row.lastIndex <= this.logStart.index) {
      // compact() deletes such a row, so a bug or a hand edit left it here.
      this.drop(row.firstIndex, row.lastIndex);
    } else if (this.firstBrokenIndex !== null) {
      this.drop(row.firstIndex, row.lastIndex);
    } else {
      this.addEntries(row);
    }
  }

  /**
   * Keeps the row's entries that follow the previous one without a gap, with
   * a term that does not decrease and a known type. Entries at or below the
   * log start are skipped: compact() keeps a row that the log start cuts.
   */
  private addEntries(row: BatchRow): void {
    const count = row.lastIndex - row.firstIndex + 1;
    const decoded = decodeEntryBatch(row.entries, row.firstIndex, count);
    for (const entry of decoded) {
      if (entry.index <= this.logStart.index) continue;
      if (!this.follows(entry)) {
        this.breakAt(entry.index, row.lastIndex);
        return;
      }
      const { index, term, type, data } = entry;
      this.entries.push({ index, term, type, data });
      this.previous = entry;
    }
    if (count < 1 || decoded.length < count) {
      // The row's metadata or blob is damaged: its tail cannot be read.
      const firstUnread = Math.max(row.firstIndex + decoded.length, this.logStart.index + 1);
      this.breakAt(firstUnread, Math.max(row.lastIndex, firstUnread));
    }
  }

  private follows(entry: StoredEntry): entry is StoredEntry & { readonly type: EntryType } {
    return (
      entry.index === this.previous.index + 1 &&
      entry.term >= this.previous.term &&
      isKnownEntryType(entry.type)
    );
  }

  private breakAt(firstIndex: number, lastIndex: number): void {
    this.firstBrokenIndex = firstIndex;
    this.drop(firstIndex, lastIndex);
  }

  private drop(firstIndex: number, lastIndex: number): void {
    for (let index = firstIndex; index <= lastIndex; index++) {
      if (this.droppedIndexes.length >= droppedIndexesLoggedMax) break;
      this.droppedIndexes.push(index);
    }
    this.droppedCount += Math.max(0, lastIndex - firstIndex + 1);
  }
}

/**
 * Scans rows in ascending firstIndex order and returns the entries that
 * follow `logStart` without a gap, cutting the log at the first invalid one.
 */
export function scanRows(rows: Iterable<BatchRow>, logStart: SnapshotMeta): LogScan {
  const scanner = new Scanner(logStart);
  for (const row of rows) scanner.addRow(row);
  return scanner;
}
