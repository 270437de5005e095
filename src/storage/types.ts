import type { Entry, HardState, SnapshotMeta } from '../consensus/types';

/**
 * Durable Raft state of one member: entries, hard state, log start and snapshot
 * metadata. Every write method returns only after the data is fsync'd.
 */
export interface RaftLogStore {
  /** Reads everything back on start; a torn tail has already been dropped. */
  load(): {
    hardState: HardState;
    snapshot: SnapshotMeta;
    logStart: SnapshotMeta;
    entries: Entry[];
  };
  /**
   * Deletes every stored entry at or after entries[0].index, appends `entries`
   * and stores `hardState` when given, in one fsync'd transaction.
   */
  persist(entries: readonly Entry[], hardState: HardState | null): void;
  /** Replaces the whole log by an installed snapshot: no entries remain. */
  installSnapshot(snapshot: SnapshotMeta): void;
  /** Records a new snapshot and deletes entries at or below logStart.index. */
  compact(snapshot: SnapshotMeta, logStart: SnapshotMeta): void;
  /** Reads durable entries back for the core's EntryReader: from `fromIndex`, at most to `toIndex` and `bytesMax` bytes, at least one. */
  readEntries(fromIndex: number, toIndex: number, bytesMax: number): Entry[];
  close(): void;
}

/** One client message as stored in a Normal entry's data. */
export interface MessageRecord {
  readonly valueset: string;
  readonly receivedAtMs: number;
}

export interface StoredMessage extends MessageRecord {
  readonly index: number;
}

/** The outcome of applying one entry. */
export interface ApplyOutcome {
  readonly index: number;
  /** The index at which the valueset is stored: this entry's, or the original's. */
  readonly storedIndex: number;
  readonly duplicate: boolean;
}

export interface StateSummary {
  readonly appliedIndex: number;
  readonly messageCount: number;
  /** Hex SHA-256 chain over stored messages in index order. */
  readonly digest: string;
}
