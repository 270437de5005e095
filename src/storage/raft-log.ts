// The durable Raft log of one member on SQLite: entries, hard state, snapshot
// metadata and log start, in `<dir>/raft.db`.
//
// Durability: WAL mode with synchronous = NORMAL, so SQLite itself fsyncs only
// around checkpoints, and this class fsyncs the WAL file after each write:
// persist(), installSnapshot() and compact() return once their transaction is
// on disk; write() returns once it is in the page cache, and sync() resolves
// once everything written so far is on disk, with the fsync on the thread
// pool so the event loop goes on meanwhile. Atomicity comes from SQLite's WAL.
// A transaction that was half written when the process or machine crashed has
// no valid commit frame in the WAL, so the next open ignores it. A write is
// therefore either fully on disk or absent. load() still checks that the entries are
// contiguous and cuts the log at the first gap (a torn tail is truncated on
// start, not fatal), which guards against bugs and files edited by hand.
//
// Layout: one row per persisted batch of consecutive entries (entry-batch.ts),
// keyed by its first index, which costs one row insert per batch instead of one
// per entry. A persist() that starts inside a row rewrites that row's prefix,
// and compact() deletes only rows wholly at or below the log start.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { Entry, EntryType, HardState, SnapshotMeta } from '../consensus/types';
import { splitBySize } from '../util/split-by-size';
import { fsyncDirectorySync, makeDirectoryDurablySync } from './durable-fs';
import {
  decodeEntryBatch,
  encodedEntryBytes,
  encodeEntryBatch,
  entryBatchPrefix,
} from './entry-batch';
import { silentLogger } from './logger';
import type { StorageLogger } from './logger';
import { configure, prepareStatements } from './raft-log-schema';
import type { MetaRow, Statements } from './raft-log-schema';
import { scanRows } from './raft-log-scan';
import type { LogScan } from './raft-log-scan';
import type { RaftLogStore } from './types';

export { raftLogFormatVersion } from './raft-log-schema';

export const raftLogFileName = 'raft.db';

/**
 * Largest encoded size of one row; persist() splits a larger batch over
 * several rows. It bounds the bytes that truncating inside a row rewrites.
 * A single entry larger than this still gets a row of its own.
 */
export const raftLogRowBytesMax = 1024 * 1024;

/** Splits consecutive entries into runs whose encoding fits in one row. */
function splitIntoRows(entries: readonly Entry[]): Entry[][] {
  return splitBySize(entries, encodedEntryBytes, raftLogRowBytesMax);
}

export class SqliteRaftLog implements RaftLogStore {
  private readonly db: Database.Database;
  private readonly statements: Statements;
  /** Created once: better-sqlite3's transaction() builds several closures per call. */
  private readonly runTransaction: (work: () => void) => void;
  /** Cached copy of the stored log start, used to validate persist() and compact(). */
  private logStart: SnapshotMeta;
  /** Highest stored index, or null when no row is stored; saves a query per persist(). */
  private lastIndex: number | null;
  /** Descriptor of the WAL file for fsyncs, opened at the first one. */
  private walFd: number | null = null;
  /** Fsyncs in flight on the thread pool; the descriptor stays open until they end. */
  private syncsInFlight = 0;
  /** The WAL descriptor that close() left for the last fsync in flight to close. */
  private walFdToClose: number | null = null;
  private closed = false;

  /** Opens or creates `<dir>/raft.db`, creating `dir` when missing. */
  static open(dir: string, logger: StorageLogger = silentLogger): SqliteRaftLog {
    makeDirectoryDurablySync(dir);
    const filePath = path.join(dir, raftLogFileName);
    const isNew = !fs.existsSync(filePath);
    const log = new SqliteRaftLog(filePath, logger);
    // SQLite fsyncs the folder for a new WAL file but not for a new database file.
    if (isNew) fsyncDirectorySync(dir);
    return log;
  }

  /**
   * Opens or creates the log database at `filePath`. A damaged file, or one
   * with another layout, is fatal: the hard state and the entries cannot be
   * rebuilt locally, and guessing them could break Raft's safety, so the
   * error names the file.
   */
  constructor(
    readonly filePath: string,
    private readonly logger: StorageLogger = silentLogger,
  ) {
    this.db = new Database(filePath);
    try {
      configure(this.db);
      this.statements = prepareStatements(this.db);
      this.runTransaction = this.db.transaction((work: () => void) => work());
      this.logStart = this.readLogStart();
      this.lastIndex = this.statements.selectLastIndex.get() ?? null;
    } catch (err) {
      this.db.close();
      // Each member locks its files while it runs, so SQLITE_BUSY here means another process uses the folder.
      const inUse = err instanceof Database.SqliteError && err.code === 'SQLITE_BUSY';
      const reason = inUse
        ? 'another process has it open, most likely a member already running on this data folder: stop it, or give this member its own --data folder'
        : String(err);
      throw new Error(`failed to open Raft log ${filePath}: ${reason}`, { cause: err });
    }
  }

  load(): {
    hardState: HardState;
    snapshot: SnapshotMeta;
    logStart: SnapshotMeta;
    entries: Entry[];
  } {
    const meta = this.readMeta();
    const logStart = { index: meta.log_start_index, term: meta.log_start_term };
    const scan = scanRows(this.statements.selectRows.iterate(), logStart);
    if (scan.droppedCount > 0) this.dropInvalid(scan, logStart, meta.commit_index);
    return {
      hardState: { term: meta.term, vote: meta.vote, commit: meta.commit_index },
      snapshot: { index: meta.snapshot_index, term: meta.snapshot_term },
      logStart,
      entries: scan.entries,
    };
  }

  /**
   * Returns the stored entries from `fromIndex` on, none above `toIndex`, at
   * most `bytesMax` bytes of data but at least one entry. Throws when the file
   * does not contain `fromIndex`.
   */
  readEntries(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    const entries: Entry[] = [];
    let bytes = 0;
    rows: for (const row of this.statements.selectRowsFrom.iterate(fromIndex, toIndex)) {
      for (const entry of decodeEntryBatch(row.entries, row.firstIndex, row.lastIndex - row.firstIndex + 1)) {
        if (entry.index < fromIndex) continue;
        if (entry.index > toIndex || (entries.length > 0 && bytes + entry.data.byteLength > bytesMax)) break rows;
        // Entries come from the core, or were checked by load() at start-up, so the type is known.
        entries.push({ index: entry.index, term: entry.term, type: entry.type as EntryType, data: entry.data });
        bytes += entry.data.byteLength;
      }
    }
    if (entries[0]?.index !== fromIndex) {
      throw new Error(`Raft log ${this.filePath} has no entry ${fromIndex} to read`);
    }
    return entries;
  }

  persist(entries: readonly Entry[], hardState: HardState | null): void {
    if (this.write(entries, hardState)) this.syncWalSync();
  }

  /**
   * Does what persist() does, without the fsync: the transaction is in the
   * page cache when this returns, and on disk once a later sync() resolves.
   * Returns false when there was nothing to write.
   */
  write(entries: readonly Entry[], hardState: HardState | null): boolean {
    const first = entries[0];
    const last = entries.at(-1);
    if (first === undefined && hardState === null) return false;
    if (first !== undefined) this.checkAppend(entries, first.index);
    this.runTransaction(() => {
      if (first !== undefined) this.writeEntries(entries, first.index);
      if (hardState !== null) {
        this.statements.updateHardState.run(hardState.term, hardState.vote, hardState.commit);
      }
    });
    if (last !== undefined) this.lastIndex = last.index;
    return true;
  }

  /**
   * Resolves once every transaction written before the call is on disk. The
   * fsync runs on the thread pool. Rejects with the fsync's error (EIO,
   * ENOSPC), after which nothing written since the last good sync may be
   * counted as stored.
   */
  sync(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`Raft log ${this.filePath} is closed`));
    const fd = this.openWal();
    this.syncsInFlight++;
    return new Promise<void>((resolve, reject) => {
      fs.fdatasync(fd, (err) => {
        this.syncsInFlight--;
        if (this.syncsInFlight === 0 && this.walFdToClose !== null) {
          fs.closeSync(this.walFdToClose);
          this.walFdToClose = null;
        }
        if (err) reject(err);
        else resolve();
      });
    });
  }

  installSnapshot(snapshot: SnapshotMeta): void {
    this.transactDurably(() => {
      this.statements.deleteAll.run();
      this.statements.updateSnapshot.run(
        snapshot.index,
        snapshot.term,
        snapshot.index,
        snapshot.term,
      );
      this.statements.raiseCommit.run(snapshot.index);
    });
    this.logStart = snapshot;
    this.lastIndex = null;
  }

  compact(snapshot: SnapshotMeta, logStart: SnapshotMeta): void {
    if (logStart.index > snapshot.index) {
      throw new RangeError(
        `log start ${logStart.index} must not be above snapshot index ${snapshot.index}`,
      );
    }
    if (logStart.index < this.logStart.index) {
      throw new RangeError(
        `log start ${logStart.index} must not be below the stored log start ${this.logStart.index}`,
      );
    }
    this.transactDurably(() => {
      this.statements.updateSnapshot.run(
        snapshot.index,
        snapshot.term,
        logStart.index,
        logStart.term,
      );
      this.statements.deleteThrough.run(logStart.index, logStart.index);
    });
    this.logStart = logStart;
    this.lastIndex = this.statements.selectLastIndex.get() ?? null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
    const fd = this.walFd;
    if (fd === null) return;
    this.walFd = null;
    // An fsync on the thread pool still uses the descriptor; the last one closes it.
    if (this.syncsInFlight === 0) fs.closeSync(fd);
    else this.walFdToClose = fd;
  }

  private transactDurably(work: () => void): void {
    this.runTransaction(work);
    this.syncWalSync();
  }

  private syncWalSync(): void {
    fs.fdatasyncSync(this.openWal());
  }

  /**
   * Opens the WAL file once. SQLite creates it at the first write and, with
   * exclusive locking, keeps it until the database closes. SQLite fsyncs the
   * folder for a new WAL file only when it fsyncs the WAL, which
   * synchronous = NORMAL leaves to this class, so the folder is fsync'd here.
   */
  private openWal(): number {
    if (this.walFd !== null) return this.walFd;
    this.walFd = fs.openSync(`${this.filePath}-wal`, 'r');
    fsyncDirectorySync(path.dirname(this.filePath));
    return this.walFd;
  }

  private readMeta(): MetaRow {
    const meta = this.statements.selectMeta.get();
    if (meta === undefined) {
      throw new Error(`Raft log ${this.filePath} has no meta row`);
    }
    return meta;
  }

  private readLogStart(): SnapshotMeta {
    const meta = this.readMeta();
    return { index: meta.log_start_index, term: meta.log_start_term };
  }

  /**
   * Throws when `entries` would leave a gap in the log or overwrite entries
   * that a snapshot covers: both are bugs of the caller, not I/O errors.
   */
  private checkAppend(entries: readonly Entry[], firstIndex: number): void {
    const lastIndex = this.lastIndex ?? this.logStart.index;
    const nextIndex = Math.max(lastIndex, this.logStart.index) + 1;
    if (firstIndex <= this.logStart.index || firstIndex > nextIndex) {
      throw new RangeError(
        `entries must start in [${this.logStart.index + 1}, ${nextIndex}], got ${firstIndex}`,
      );
    }
    entries.forEach((entry, offset) => {
      if (entry.index !== firstIndex + offset) {
        throw new RangeError(
          `entries must be contiguous: expected index ${firstIndex + offset}, got ${entry.index}`,
        );
      }
    });
  }

  /** Replaces every stored entry at or after firstIndex by `entries`; inside a transaction. */
  private writeEntries(entries: readonly Entry[], firstIndex: number): void {
    if (this.lastIndex !== null && firstIndex <= this.lastIndex) this.truncateFrom(firstIndex);
    for (const row of splitIntoRows(entries)) {
      const rowFirst = row[0]?.index ?? firstIndex;
      this.statements.insertRow.run(rowFirst, rowFirst + row.length - 1, encodeEntryBatch(row));
    }
  }

  /**
   * Deletes every stored entry at or after `index`: whole rows that start
   * there or later, and the tail of the row that contains `index`, if any.
   */
  private truncateFrom(index: number): void {
    this.statements.deleteFrom.run(index);
    const row = this.statements.selectRowBefore.get(index);
    if (row === undefined || row.lastIndex < index) return;
    const keptEntries = decodeEntryBatch(row.entries, row.firstIndex, index - row.firstIndex);
    if (keptEntries.length === 0) {
      this.statements.deleteRow.run(row.firstIndex);
      return;
    }
    const lastKept = row.firstIndex + keptEntries.length - 1;
    const keptBytes = entryBatchPrefix(row.entries, keptEntries);
    this.statements.updateRow.run(lastKept, keptBytes, row.firstIndex);
  }

  private dropInvalid(scan: LogScan, logStart: SnapshotMeta, commit: number): void {
    this.transactDurably(() => {
      if (scan.firstBrokenIndex !== null) this.truncateFrom(scan.firstBrokenIndex);
      // A row that truncating left wholly at or below the log start is stale too.
      this.statements.deleteThrough.run(logStart.index, logStart.index);
    });
    this.lastIndex = this.statements.selectLastIndex.get() ?? null;
    const lastKept = scan.entries.at(-1)?.index ?? logStart.index;
    this.logger.warn(
      {
        file: this.filePath,
        logStartIndex: logStart.index,
        lastKeptIndex: lastKept,
        commitIndex: commit,
        droppedCount: scan.droppedCount,
        droppedIndexes: scan.droppedIndexes,
      },
      'dropped Raft log entries that do not follow the log start without a gap',
    );
  }
}
