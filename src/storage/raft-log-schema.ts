// The SQLite schema of raft.db, its layout version and its prepared statements.
import type Database from 'better-sqlite3';
import type { BatchRow } from './raft-log-scan';

/**
 * Version of the file layout, kept in SQLite's user_version. Layout 1 of
 * earlier builds left user_version at 0 and stored one row per entry in a
 * table named `entries`.
 */
export const raftLogFormatVersion = 2;

const schemaSql = `
CREATE TABLE batches (
  first_index INTEGER PRIMARY KEY,
  last_index INTEGER NOT NULL,
  entries BLOB NOT NULL
);
CREATE TABLE meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  term INTEGER NOT NULL,
  vote TEXT,
  commit_index INTEGER NOT NULL,
  snapshot_index INTEGER NOT NULL,
  snapshot_term INTEGER NOT NULL,
  log_start_index INTEGER NOT NULL,
  log_start_term INTEGER NOT NULL
);
INSERT INTO meta VALUES (1, 0, NULL, 0, 0, 0, 0, 0);
PRAGMA user_version = ${raftLogFormatVersion};
`;

const rowColumns = 'first_index AS firstIndex, last_index AS lastIndex, entries';

export interface MetaRow {
  readonly term: number;
  readonly vote: string | null;
  readonly commit_index: number;
  readonly snapshot_index: number;
  readonly snapshot_term: number;
  readonly log_start_index: number;
  readonly log_start_term: number;
}

export function prepareStatements(db: Database.Database) {
  return {
    selectMeta: db.prepare<[], MetaRow>('SELECT * FROM meta WHERE id = 1'),
    selectRows: db.prepare<[], BatchRow>(`SELECT ${rowColumns} FROM batches ORDER BY first_index`),
    selectLastIndex: db
      .prepare<[], number | null>('SELECT max(last_index) FROM batches')
      .pluck(),
    selectRowBefore: db.prepare<[number], BatchRow>(
      `SELECT ${rowColumns} FROM batches WHERE first_index < ?
         ORDER BY first_index DESC LIMIT 1`,
    ),
    // Rows from the one that contains the first index on, in index order.
    selectRowsFrom: db.prepare<[number, number], BatchRow>(
      `SELECT ${rowColumns} FROM batches
         WHERE first_index >= coalesce((SELECT max(first_index) FROM batches WHERE first_index <= ?), 0)
           AND first_index <= ?
         ORDER BY first_index`,
    ),
    insertRow: db.prepare<[number, number, Uint8Array]>(
      'INSERT INTO batches (first_index, last_index, entries) VALUES (?, ?, ?)',
    ),
    updateRow: db.prepare<[number, Uint8Array, number]>(
      'UPDATE batches SET last_index = ?, entries = ? WHERE first_index = ?',
    ),
    deleteRow: db.prepare<[number]>('DELETE FROM batches WHERE first_index = ?'),
    deleteFrom: db.prepare<[number]>('DELETE FROM batches WHERE first_index >= ?'),
    // The first_index bound lets SQLite walk the primary key instead of the table.
    deleteThrough: db.prepare<[number, number]>(
      'DELETE FROM batches WHERE first_index <= ? AND last_index <= ?',
    ),
    deleteAll: db.prepare('DELETE FROM batches'),
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

export type Statements = ReturnType<typeof prepareStatements>;

/** Page cache of the raft.db connection, in KiB. */
const raftLogCacheKib = 2048;

/**
 * Sets the pragmas and creates the schema of a new file; throws when the file
 * has another layout. Exclusive locking comes before WAL mode, so SQLite keeps
 * the WAL index in process memory and takes no file lock per transaction: no
 * other connection opens raft.db while the member runs.
 */
export function configure(db: Database.Database): void {
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  // SQLite fsyncs at checkpoints only; SqliteRaftLog fsyncs the WAL after each
  // write itself, on the thread pool, so the event loop does not wait for it.
  db.pragma('synchronous = NORMAL');
  // The log is read back only at start-up and for lagging followers, so a small cache is enough.
  db.pragma(`cache_size = -${raftLogCacheKib}`);
  const version: unknown = db.pragma('user_version', { simple: true });
  if (version === raftLogFormatVersion) return;
  const tableCount: unknown = db
    .prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
    .pluck()
    .get();
  if (version === 0 && tableCount === 0) {
    db.transaction(() => db.exec(schemaSql))();
    return;
  }
  const found =
    version === 0
      ? 'no layout version (earlier builds stored one row per entry without one)'
      : `layout version ${String(version)}`;
  throw new Error(
    `the file has ${found}, but this build reads only layout version ${raftLogFormatVersion}; ` +
      'start the member with an empty data folder',
  );
}
