// One SQLite file of the message state machine: the messages table, the meta
// row (applied index and term, message count, digest) and prepared statements.
//
// The live file runs in WAL mode with synchronous = NORMAL, so a commit is not
// fsync'd at once. That is safe because the applied index is written in the
// same transaction as the rows it covers. After a crash the database contains
// some prefix of the applied batches, and replay restarts after the applied
// index it kept. The Raft log, fsync'd on every write, contains the rest.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import { digestBytes, initialDigest } from './digest';
import { copyFileDurably, fsyncFile, fsyncFileSync } from './durable-fs';
import type { StoredMessage } from './types';

export interface StateMeta {
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  readonly messageCount: number;
  /** Raw 32-byte digest of the stored messages. */
  readonly digest: Buffer;
}

/** A state file that is missing, not a database, or not one of ours. */
export class StateDamagedError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`state database ${file} is damaged: ${reason}`);
    this.name = 'StateDamagedError';
  }
}

/**
 * SQLite result codes that mean the file's content is bad. Other codes (busy,
 * locked, permission denied, disk full, I/O error) describe the environment,
 * and replacing the file would not help.
 */
const damagedCodePattern =
  /^SQLITE_(CORRUPT|NOTADB|FORMAT|SCHEMA|MISMATCH|RANGE|ERROR$|IOERR_SHORT_READ$)/;

/** Returns whether `err` means that a state file is damaged, so recovering from a snapshot is right. */
export function isStateDamagedError(err: unknown): boolean {
  if (err instanceof StateDamagedError) return true;
  return err instanceof Database.SqliteError && damagedCodePattern.test(err.code);
}

const schemaSql = `
CREATE TABLE messages (
  idx INTEGER PRIMARY KEY,
  valueset TEXT NOT NULL UNIQUE,
  received_at_ms INTEGER NOT NULL
);
CREATE TABLE meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  applied_index INTEGER NOT NULL,
  applied_term INTEGER NOT NULL,
  message_count INTEGER NOT NULL,
  digest BLOB NOT NULL
);
`;

interface MetaRow {
  readonly applied_index: number;
  readonly applied_term: number;
  readonly message_count: number;
  readonly digest: Buffer;
}

const selectMetaSql =
  'SELECT applied_index, applied_term, message_count, digest FROM meta WHERE id = 1';

function prepareStatements(db: Database.Database) {
  return {
    updateMeta: db.prepare<[number, number, number, Buffer]>(
      `UPDATE meta SET applied_index = ?, applied_term = ?, message_count = ?,
         digest = ? WHERE id = 1`,
    ),
    // CAST stores UTF-8 bytes bound as a blob as TEXT, the same value a bound
    // string gives, and leaves a bound string as it is.
    insertMessage: db.prepare<[number, Valueset, number]>(
      `INSERT OR IGNORE INTO messages (idx, valueset, received_at_ms)
         VALUES (?, CAST(? AS TEXT), ?)`,
    ),
    selectIndexOf: db
      .prepare<[Valueset], number>('SELECT idx FROM messages WHERE valueset = CAST(? AS TEXT)')
      .pluck(),
    selectFrom: db.prepare<[number, number], StoredMessage>(
      `SELECT idx AS "index", valueset, received_at_ms AS receivedAtMs
         FROM messages WHERE idx >= ? ORDER BY idx LIMIT ?`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** A valueset as a string, or as its bytes when they are valid UTF-8. */
export type Valueset = string | Uint8Array;

/** One row of the messages table. */
export interface MessageRow {
  readonly index: number;
  readonly valueset: Valueset;
  readonly receivedAtMs: number;
}

/**
 * Maximum number of rows that insertAll() writes with one statement (3 bound
 * parameters each). Inserting 200,000 rows of 80-byte valuesets in transactions of 100,
 * one statement per 32 rows took about 25% less CPU than one per row, and 50
 * or 100 rows per statement gained no more (2-vCPU VM, SQLite 3.53.2).
 */
export const insertRowsMax = 32;

/** Returns `INSERT OR IGNORE INTO messages ... VALUES` with `rowCount` rows of parameters. */
function insertRowsSql(rowCount: number): string {
  const row = '(?, CAST(? AS TEXT), ?)';
  const rows = Array(rowCount).fill(row).join(', ');
  return `INSERT OR IGNORE INTO messages (idx, valueset, received_at_ms) VALUES ${rows}`;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Reads and validates the meta row; throws StateDamagedError when it is missing or invalid. */
function readMeta(db: Database.Database, file: string): StateMeta {
  const tables = db
    .prepare<[], string>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('messages', 'meta')",
    )
    .pluck()
    .all();
  if (tables.length !== 2) throw new StateDamagedError(file, 'tables are missing');
  const row = db.prepare<[], MetaRow>(selectMetaSql).get();
  if (row === undefined) throw new StateDamagedError(file, 'meta row is missing');
  const valid =
    isCount(row.applied_index) &&
    isCount(row.applied_term) &&
    isCount(row.message_count) &&
    row.message_count <= row.applied_index &&
    Buffer.isBuffer(row.digest) &&
    row.digest.length === digestBytes;
  if (!valid) throw new StateDamagedError(file, 'meta row is invalid');
  return {
    appliedIndex: row.applied_index,
    appliedTerm: row.applied_term,
    messageCount: row.message_count,
    digest: row.digest,
  };
}

/** WAL pages after which a commit checkpoints into the file: SQLite's default. */
const walAutocheckpointPages = 1000;

/** Page cache of the live state connection in KiB, half of better-sqlite3's default. */
const stateCacheKib = 8192;

/**
 * Sets the pragmas of a live state file. Exclusive locking comes first, so
 * that SQLite keeps the WAL index in process memory instead of a shared-memory
 * file and takes no lock per transaction or read. No other connection opens the
 * live file while the member runs; snapshots are copied through this connection.
 */
function configureLive(db: Database.Database): void {
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`wal_autocheckpoint = ${walAutocheckpointPages}`);
  db.pragma(`cache_size = -${stateCacheKib}`);
}

function checkIntegrity(db: Database.Database, file: string): void {
  const result: unknown = db.pragma('quick_check', { simple: true });
  if (result !== 'ok') throw new StateDamagedError(file, `quick_check: ${String(result)}`);
}

/** Runs `use` on a database file opened only for it; the file must exist. */
function withDatabase<T>(file: string, use: (db: Database.Database) => T): T {
  if (!fs.existsSync(file)) throw new StateDamagedError(file, 'file is missing');
  const db = new Database(file, { fileMustExist: true });
  try {
    return use(db);
  } finally {
    db.close();
  }
}

export class StateDatabase {
  private readonly statements: Statements;
  /** Created once: better-sqlite3's transaction() builds several closures per call. */
  private readonly runTransaction: (work: () => unknown) => unknown;
  /** Multi-row inserts by row count minus one, prepared on first use. */
  private readonly insertRowsStatements: Database.Statement<unknown[]>[] = [];
  /** Parameters of the last multi-row insert, reused to save an allocation. */
  private readonly insertParameters: unknown[] = [];

  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
  ) {
    this.statements = prepareStatements(db);
    this.runTransaction = db.transaction((work: () => unknown) => work());
  }

  /** Creates an empty state file with its schema and meta row, closed and fsync'd. */
  static create(file: string): void {
    const db = new Database(file);
    try {
      db.pragma('journal_mode = DELETE');
      db.exec(schemaSql);
      db.prepare('INSERT INTO meta VALUES (1, 0, 0, 0, ?)').run(initialDigest());
    } finally {
      db.close();
    }
    fsyncFileSync(file);
  }

  /**
   * Opens an existing state file for live use after a quick_check, which reads
   * the whole file once. Throws StateDamagedError, or an SQLite error that
   * isStateDamagedError() classifies, when the file cannot be used.
   */
  static open(file: string): StateDatabase {
    if (!fs.existsSync(file)) throw new StateDamagedError(file, 'file is missing');
    const db = new Database(file, { fileMustExist: true });
    try {
      configureLive(db);
      checkIntegrity(db, file);
      readMeta(db, file);
      return new StateDatabase(file, db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Turns a copy of a state file into one self-contained file (rollback
   * journal, so no WAL file belongs to it) and returns its meta row. With
   * `verify`, runs a quick_check first, which reads the whole file.
   */
  static sealCopy(file: string, verify: boolean): StateMeta {
    return withDatabase(file, (db) => {
      db.pragma('journal_mode = DELETE');
      if (verify) checkIntegrity(db, file);
      return readMeta(db, file);
    });
  }

  readMeta(): StateMeta {
    return readMeta(this.db, this.file);
  }

  writeMeta(meta: StateMeta): void {
    this.statements.updateMeta.run(
      meta.appliedIndex,
      meta.appliedTerm,
      meta.messageCount,
      meta.digest,
    );
  }

  /**
   * Inserts a message; returns false when its valueset is already stored. A
   * valueset given as bytes must be valid UTF-8: SQLite does not check it.
   */
  insert(index: number, valueset: Valueset, receivedAtMs: number): boolean {
    return this.statements.insertMessage.run(index, valueset, receivedAtMs).changes > 0;
  }

  /**
   * Inserts up to insertRowsMax rows with one statement, in order, skipping
   * each row whose index or valueset is already stored (also by an earlier row
   * of `rows`). Returns the number of rows inserted. Valuesets given as bytes
   * must be valid UTF-8.
   */
  insertAll(rows: readonly MessageRow[]): number {
    if (rows.length === 0) return 0;
    if (rows.length > insertRowsMax) {
      throw new RangeError(`insertAll takes at most ${insertRowsMax} rows, got ${rows.length}`);
    }
    const parameters = this.insertParameters;
    for (const row of rows) parameters.push(row.index, row.valueset, row.receivedAtMs);
    try {
      return this.insertRowsStatement(rows.length).run(parameters).changes;
    } finally {
      parameters.length = 0;
    }
  }

  indexOf(valueset: Valueset): number | undefined {
    return this.statements.selectIndexOf.get(valueset);
  }

  read(fromIndex: number, limit: number): StoredMessage[] {
    return this.statements.selectFrom.all(fromIndex, limit);
  }

  private insertRowsStatement(rowCount: number): Database.Statement<unknown[]> {
    let statement = this.insertRowsStatements[rowCount - 1];
    if (statement === undefined) {
      statement = this.db.prepare<unknown[]>(insertRowsSql(rowCount));
      this.insertRowsStatements[rowCount - 1] = statement;
    }
    return statement;
  }

  /** Runs `work` in one transaction; an exception rolls everything back. */
  transaction<T>(work: () => T): T {
    return this.runTransaction(work) as T;
  }

  /**
   * Resolves once every transaction committed before the call is on disk. It
   * fsyncs the WAL file, then the database file, on the thread pool. SQLite
   * fsyncs the database file at the end of each checkpoint, before it reuses
   * the WAL, so a commit is in one of the two.
   */
  async syncToDisk(): Promise<void> {
    try {
      await fsyncFile(`${this.file}-wal`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await fsyncFile(this.file);
  }

  /**
   * Copies the database file to `destination` as of now. A checkpoint moves
   * every committed transaction into the file, and automatic checkpoints stay
   * off until the copy ends, so transactions meanwhile go to the WAL only and
   * leave the file as it was. The copy runs on the thread pool. Throws when
   * the database is closed before the copy ends, since closing checkpoints
   * into the file and could tear the copy.
   * NOTE: callers run one copy at a time, because a second copy's checkpoint
   * would write into the file while the first copy reads it.
   */
  async copyTo(destination: string): Promise<void> {
    this.db.pragma('wal_autocheckpoint = 0');
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      await copyFileDurably(this.file, destination);
    } finally {
      if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${walAutocheckpointPages}`);
    }
    if (!this.db.open) throw new Error(`state database ${this.file} was closed while it was copied`);
  }

  close(): void {
    this.db.close();
  }
}
