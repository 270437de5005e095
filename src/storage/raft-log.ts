// The durable Raft log of one member on SQLite: entries, hard state, snapshot
// metadata and log start, in `<dir>/raft.db`.
//
// Durability: WAL mode with synchronous = FULL, so every committed transaction
// is fsync'd before the write method returns. Atomicity comes from SQLite's WAL.
// A transaction that was half written when the process or machine crashed has
// no commit record in the WAL, so the next open ignores it. A persist() is
// therefore either fully on disk or absent. load() still checks that the entries are
// contiguous and cuts the log at the first gap (a torn tail is truncated on
// start, not fatal), which guards against bugs and files edited by hand.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { EntryType } from '../consensus/types';
import type { Entry, HardState, SnapshotMeta } from '../consensus/types';
import { fsyncDirectorySync, makeDirectoryDurablySync } from './durable-fs';
import { silentLogger } from './logger';
import type { StorageLogger } from './logger';
import type { RaftLogStore } from './types';

export const raftLogFileName = 'raft.db';

/** Dropped indexes named in the warning of load(); the count covers the rest. */
const droppedIndexesLoggedMax = 20;

const schemaSql = `
CREATE TABLE IF NOT EXISTS entries (
  idx INTEGER PRIMARY KEY,
  term INTEGER NOT NULL,
  type INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  term INTEGER NOT NULL,
  vote TEXT,
  commit_index INTEGER NOT NULL,
  snapshot_index INTEGER NOT NULL,
  snapshot_term INTEGER NOT NULL,
  log_start_index INTEGER NOT NULL,
  log_start_term INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta VALUES (1, 0, NULL, 0, 0, 0, 0, 0);
`;

interface EntryRow {
  readonly idx: number;
  readonly term: number;
  readonly type: number;
  readonly data: Buffer;
}

interface MetaRow {
  readonly term: number;
  readonly vote: string | null;
  readonly commit_index: number;
  readonly snapshot_index: number;
  readonly snapshot_term: number;
  readonly log_start_index: number;
  readonly log_start_term: number;
}

/** The valid stored entries after the log start, and the indexes of the rows dropped. */
interface ContiguousPrefix {
  readonly entries: Entry[];
  readonly droppedIndexes: number[];
}

function prepareStatements(db: Database.Database) {
  return {
    selectMeta: db.prepare<[], MetaRow>('SELECT * FROM meta WHERE id = 1'),
    selectEntries: db.prepare<[], EntryRow>(
      'SELECT idx, term, type, data FROM entries ORDER BY idx',
    ),
    selectLastIndex: db
      .prepare<[], number | null>('SELECT max(idx) FROM entries')
      .pluck(),
    insertEntry: db.prepare<[number, number, number, Uint8Array]>(
      'INSERT INTO entries (idx, term, type, data) VALUES (?, ?, ?, ?)',
    ),
    deleteFrom: db.prepare<[number]>('DELETE FROM entries WHERE idx >= ?'),
    deleteThrough: db.prepare<[number]>('DELETE FROM entries WHERE idx <= ?'),
    deleteAll: db.prepare('DELETE FROM entries'),
    updateHardState: db.prepare<[number, string | null, number]>(
      'UPDATE meta SET term = ?, vote = ?, commit_index = ? WHERE id = 1',
    ),
    raiseCommit: db.prepare<[number]>(
      'UPDATE meta SET commit_index = max(commit_index, ?) WHERE id = 1',
    ),
    updateSnapshot: db.prepare<[number, number, number, number]>(
      `UPDATE meta SET snapshot_index = ?, snapshot_term = ?,
         log_start_index = ?, log_start_term = ? WHERE id = 1`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

function isKnownEntryType(type: number): type is EntryType {
  return type === EntryType.Normal || type === EntryType.Noop;
}

/**
 * Keeps the stored entries that follow logStart without a gap, with terms that
 * never decrease and a known type. Every other row is reported as dropped.
 */
function contiguousPrefix(
  rows: readonly EntryRow[],
  logStart: SnapshotMeta,
): ContiguousPrefix {
  const entries: Entry[] = [];
  const droppedIndexes: number[] = [];
  let previous = logStart;
  let broken = false;
  for (const row of rows) {
    if (row.idx <= logStart.index) {
      droppedIndexes.push(row.idx);
      continue;
    }
    broken ||=
      row.idx !== previous.index + 1 ||
      row.term < previous.term ||
      !isKnownEntryType(row.type);
    if (broken) {
      droppedIndexes.push(row.idx);
      continue;
    }
    entries.push({ index: row.idx, term: row.term, type: row.type, data: row.data });
    previous = { index: row.idx, term: row.term };
  }
  return { entries, droppedIndexes };
}

export class SqliteRaftLog implements RaftLogStore {
  private readonly db: Database.Database;
  private readonly statements: Statements;
  /** Cached copy of the stored log start, used to validate persist() and compact(). */
  private logStart: SnapshotMeta;

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
   * Opens or creates the log database at `filePath`. A damaged file is fatal:
   * the hard state and the entries cannot be rebuilt locally, and guessing
   * them could break Raft's safety, so the error names the file.
   */
  constructor(
    readonly filePath: string,
    private readonly logger: StorageLogger = silentLogger,
  ) {
    this.db = new Database(filePath);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.exec(schemaSql);
      this.statements = prepareStatements(this.db);
      this.logStart = this.readLogStart();
    } catch (err) {
      this.db.close();
      throw new Error(`failed to open Raft log ${filePath}: ${String(err)}`, {
        cause: err,
      });
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
    const prefix = contiguousPrefix(this.statements.selectEntries.all(), logStart);
    if (prefix.droppedIndexes.length > 0) {
      this.dropEntries(prefix, logStart, meta.commit_index);
    }
    return {
      hardState: { term: meta.term, vote: meta.vote, commit: meta.commit_index },
      snapshot: { index: meta.snapshot_index, term: meta.snapshot_term },
      logStart,
      entries: prefix.entries,
    };
  }

  persist(entries: readonly Entry[], hardState: HardState | null): void {
    const first = entries[0];
    if (first === undefined && hardState === null) return;
    if (first !== undefined) this.checkAppend(entries, first.index);
    const write = this.db.transaction(() => {
      if (first !== undefined) {
        this.statements.deleteFrom.run(first.index);
        for (const entry of entries) {
          this.statements.insertEntry.run(entry.index, entry.term, entry.type, entry.data);
        }
      }
      if (hardState !== null) {
        this.statements.updateHardState.run(hardState.term, hardState.vote, hardState.commit);
      }
    });
    write();
  }

  installSnapshot(snapshot: SnapshotMeta): void {
    const install = this.db.transaction(() => {
      this.statements.deleteAll.run();
      this.statements.updateSnapshot.run(
        snapshot.index,
        snapshot.term,
        snapshot.index,
        snapshot.term,
      );
      this.statements.raiseCommit.run(snapshot.index);
    });
    install();
    this.logStart = snapshot;
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
    const compact = this.db.transaction(() => {
      this.statements.updateSnapshot.run(
        snapshot.index,
        snapshot.term,
        logStart.index,
        logStart.term,
      );
      this.statements.deleteThrough.run(logStart.index);
    });
    compact();
    this.logStart = logStart;
  }

  close(): void {
    this.db.close();
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
    const lastIndex = this.statements.selectLastIndex.get() ?? this.logStart.index;
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

  private dropEntries(prefix: ContiguousPrefix, logStart: SnapshotMeta, commit: number): void {
    const dropped = prefix.droppedIndexes;
    const drop = this.db.transaction(() => {
      this.statements.deleteThrough.run(logStart.index);
      const firstBroken = dropped.find((index) => index > logStart.index);
      if (firstBroken !== undefined) this.statements.deleteFrom.run(firstBroken);
    });
    drop();
    const lastKept = prefix.entries.at(-1)?.index ?? logStart.index;
    this.logger.warn(
      {
        file: this.filePath,
        logStartIndex: logStart.index,
        lastKeptIndex: lastKept,
        commitIndex: commit,
        droppedCount: dropped.length,
        droppedIndexes: dropped.slice(0, droppedIndexesLoggedMax),
      },
      'dropped Raft log entries that do not follow the log start without a gap',
    );
  }
}
