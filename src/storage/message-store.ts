// The message state machine: applies committed entries in index order to a
// SQLite database under `<dir>/state/`, storing each valueset once, and keeps
// the applied index, message count and digest in the same transaction as the
// rows. See state-db.ts for why the live file need not fsync every apply, and
// state-dir.ts for how the live file is switched atomically.
import path from 'node:path';
import { EntryType } from '../consensus/types';
import type { Entry, SnapshotMeta } from '../consensus/types';
import { decodeStorableMessage } from './codec';
import type { StorableMessage } from './codec';
import { DigestChain } from './digest';
import { fsyncFile, removeSqliteFiles } from './durable-fs';
import { silentLogger } from './logger';
import type { StorageLogger } from './logger';
import {
  fileSha256,
  pruneSnapshots,
  publishSnapshot,
  snapshotsDirectory,
  snapshotsKeptCount,
  snapshotTempPath,
} from './snapshot-files';
import type { LocalSnapshot } from './snapshot-files';
import { insertRowsMax, StateDatabase } from './state-db';
import type { MessageRow, StateMeta } from './state-db';
import { stateDirectory, switchCurrent } from './state-dir';
import { openLiveState, stageStateCopy } from './state-recovery';
import type { ApplyOutcome, StateSummary, StoredMessage } from './types';

export { digestStep } from './digest';

/** State of one apply() call until its transaction commits. */
interface PendingApply {
  appliedIndex: number;
  appliedTerm: number;
  messageCount: number;
  readonly digest: DigestChain;
  /** Decoded messages not inserted yet: at most insertRowsMax. */
  readonly rows: MessageRow[];
  readonly outcomes: ApplyOutcome[];
}

/** Advances the pending state by a message that was stored at its own index. */
function recordStored(row: MessageRow, pending: PendingApply): void {
  if (typeof row.valueset === 'string') pending.digest.add(row.index, row.valueset);
  else pending.digest.addUtf8(row.index, row.valueset);
  pending.messageCount += 1;
  pending.outcomes.push({ index: row.index, storedIndex: row.index, duplicate: false });
}

export class MessageStore {
  private meta: StateMeta;
  private digestHex: string;

  private constructor(
    private readonly dir: string,
    private readonly logger: StorageLogger,
    private database: StateDatabase,
  ) {
    this.meta = database.readMeta();
    this.digestHex = this.meta.digest.toString('hex');
  }

  /**
   * Opens the state machine of data folder `dir`. When the live database is
   * missing or damaged, it logs why and starts from the newest local snapshot,
   * or empty. The caller then replays the log after summary().appliedIndex.
   */
  static open(dir: string, logger: StorageLogger = silentLogger): MessageStore {
    const database = openLiveState(dir, logger);
    const store = new MessageStore(dir, logger, database);
    logger.info(
      { file: database.file, ...store.summary() },
      'opened state database',
    );
    return store;
  }

  /**
   * Applies committed entries in one transaction. Entries at or below the
   * applied index are skipped, so replaying after a restart is exactly-once.
   * Returns one outcome per Normal entry applied. Throws, and changes nothing,
   * when a new entry's index does not directly follow the one applied before.
   */
  apply(entries: readonly Entry[]): ApplyOutcome[] {
    const pending: PendingApply = {
      appliedIndex: this.meta.appliedIndex,
      appliedTerm: this.meta.appliedTerm,
      messageCount: this.meta.messageCount,
      digest: new DigestChain(this.meta.digest),
      rows: [],
      outcomes: [],
    };
    const meta = this.database.transaction(() => {
      for (const entry of entries) {
        if (entry.index <= pending.appliedIndex) continue;
        if (entry.index !== pending.appliedIndex + 1) {
          throw new RangeError(
            `cannot apply entry ${entry.index}: the next index to apply is ${pending.appliedIndex + 1}`,
          );
        }
        if (entry.type === EntryType.Normal) this.queueNormal(entry, pending);
        pending.appliedIndex = entry.index;
        pending.appliedTerm = entry.term;
      }
      this.insertQueued(pending);
      const applied: StateMeta = {
        appliedIndex: pending.appliedIndex,
        appliedTerm: pending.appliedTerm,
        messageCount: pending.messageCount,
        digest: pending.digest.value(),
      };
      if (applied.appliedIndex !== this.meta.appliedIndex) this.database.writeMeta(applied);
      return applied;
    });
    this.setMeta(meta);
    return pending.outcomes;
  }

  summary(): StateSummary & { appliedTerm: number } {
    return {
      appliedIndex: this.meta.appliedIndex,
      appliedTerm: this.meta.appliedTerm,
      messageCount: this.meta.messageCount,
      digest: this.digestHex,
    };
  }

  /** Returns the index at which `valueset` is stored, or undefined. */
  lookup(valueset: string): number | undefined {
    return this.database.indexOf(valueset);
  }

  /** Returns up to `limit` stored messages with index >= fromIndex, ascending. */
  read(fromIndex: number, limit: number): StoredMessage[] {
    if (!Number.isSafeInteger(fromIndex) || fromIndex < 0) {
      throw new RangeError(`fromIndex must be a non-negative integer, got ${fromIndex}`);
    }
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
    }
    return this.database.read(fromIndex, limit);
  }

  /**
   * Writes a consistent copy of the database to `filePath` (replacing it),
   * fsyncs it and returns the applied index and term the copy contains. The
   * copy and its fsyncs run on the thread pool, so apply() can run meanwhile.
   * The copy contains the state when it started, which the returned meta
   * describes.
   */
  async createSnapshot(filePath: string): Promise<SnapshotMeta> {
    removeSqliteFiles(filePath);
    await this.database.copyTo(filePath);
    // Flushes the copied pages first, so the fsync in sealCopy() on the event
    // loop has only the changed header page left to write.
    await fsyncFile(filePath);
    const meta = StateDatabase.sealCopy(filePath, false);
    await fsyncFile(filePath);
    return { index: meta.appliedIndex, term: meta.appliedTerm };
  }

  /**
   * Makes every apply() so far durable and resolves with the applied index and
   * term they reach. Apply goes on meanwhile. Rejects when a snapshot replaced
   * the database before the fsyncs ended, since they then covered the old file.
   */
  async syncToDisk(): Promise<SnapshotMeta> {
    const durable = { index: this.meta.appliedIndex, term: this.meta.appliedTerm };
    const database = this.database;
    try {
      await database.syncToDisk();
    } catch (err) {
      // A restore that deletes the old file fails its fsync, so report the restore instead.
      if (database === this.database) throw err;
    }
    if (database !== this.database) {
      throw new Error(`state database ${database.file} was replaced while it was fsync'd`);
    }
    return durable;
  }

  /**
   * Creates a snapshot in `<dir>/snapshots/snapshot-<index>-<term>.db` with
   * its `.sha256` sidecar and deletes all but the newest snapshots.
   */
  async saveSnapshot(): Promise<LocalSnapshot> {
    const snapshotsDir = snapshotsDirectory(this.dir);
    const tempPath = snapshotTempPath(snapshotsDir);
    try {
      const meta = await this.createSnapshot(tempPath);
      const sha256 = await fileSha256(tempPath);
      const snapshot = publishSnapshot(snapshotsDir, tempPath, meta, sha256);
      const pruned = pruneSnapshots(snapshotsDir, snapshotsKeptCount, snapshot.path);
      this.logger.info(
        { path: snapshot.path, index: meta.index, term: meta.term, bytes: snapshot.bytes, pruned },
        'snapshot saved',
      );
      return snapshot;
    } catch (err) {
      removeSqliteFiles(tempPath);
      throw err;
    }
  }

  /**
   * Replaces the live database by a copy of the snapshot at `snapshotPath`.
   * The copy is verified before the switch; when it is damaged this throws and
   * the live database stays as it was.
   */
  restoreFrom(snapshotPath: string): void {
    const stateDir = stateDirectory(this.dir);
    const staged = stageStateCopy(stateDir, snapshotPath);
    this.database.close();
    switchCurrent(stateDir, staged.name);
    this.database = StateDatabase.open(path.join(stateDir, staged.name));
    this.setMeta(this.database.readMeta());
    this.logger.info(
      { snapshot: snapshotPath, file: this.database.file, ...this.summary() },
      'state database restored from snapshot',
    );
  }

  close(): void {
    this.database.close();
  }

  /** Decodes a Normal entry and queues its message; skips data that is not a message. */
  private queueNormal(entry: Entry, pending: PendingApply): void {
    let message: StorableMessage;
    try {
      message = decodeStorableMessage(entry.data);
    } catch (err) {
      // NOTE: every member decodes the same bytes, so skipping keeps them equal,
      // but a client waiting for this entry gets no outcome and times out.
      this.logger.warn({ err, index: entry.index }, 'skipped an entry whose data is not a message');
      return;
    }
    const { valueset, receivedAtMs } = message;
    pending.rows.push({ index: entry.index, valueset, receivedAtMs });
    if (pending.rows.length === insertRowsMax) this.insertQueued(pending);
  }

  /** Inserts the queued messages with one statement and records their outcomes in index order. */
  private insertQueued(pending: PendingApply): void {
    const rows = pending.rows;
    const insertedCount = this.database.insertAll(rows);
    if (insertedCount === rows.length) {
      for (const row of rows) recordStored(row, pending);
    } else {
      this.recordPartialInsert(rows, insertedCount, pending);
    }
    rows.length = 0;
  }

  /**
   * Records the outcomes of an insert that skipped some rows. A row was
   * inserted exactly when its valueset is now stored at its own index, because
   * no message is stored above the applied index before apply() writes it.
   * The count of such rows checks that invariant.
   */
  private recordPartialInsert(
    rows: readonly MessageRow[],
    insertedCount: number,
    pending: PendingApply,
  ): void {
    const storedIndexes = rows.map((row) => this.database.indexOf(row.valueset));
    const ownIndexCount = rows.filter((row, i) => storedIndexes[i] === row.index).length;
    if (ownIndexCount !== insertedCount) {
      const file = this.database.file;
      const appliedIndex = this.meta.appliedIndex;
      throw new Error(
        `state database ${file} already stores messages above applied index ${appliedIndex}; ` +
          'restore it from a snapshot',
      );
    }
    rows.forEach((row, i) => {
      const storedIndex = storedIndexes[i];
      if (storedIndex === undefined) {
        throw new Error(`entry ${row.index} was not inserted, but its valueset is not stored`);
      }
      if (storedIndex === row.index) recordStored(row, pending);
      else pending.outcomes.push({ index: row.index, storedIndex, duplicate: true });
    });
  }

  private setMeta(meta: StateMeta): void {
    this.meta = { ...meta };
    this.digestHex = meta.digest.toString('hex');
  }
}
