// Opening the live state database named by CURRENT, and the recovery when that
// file is missing or damaged: start from the newest local snapshot whose
// SHA-256 matches its sidecar, or from an empty database when none does. The
// caller then replays the Raft log after the applied index, or receives a
// snapshot, so a damaged state file never stops the member from starting.
import fs from 'node:fs';
import path from 'node:path';
import { fsyncFileSync, makeDirectoryDurablySync, removeSqliteFiles } from './durable-fs';
import type { StorageLogger } from './logger';
import {
  fileSha256Sync,
  listSnapshots,
  removeIncompleteSnapshots,
  snapshotsDirectory,
} from './snapshot-files';
import type { LocalSnapshot } from './snapshot-files';
import { isStateDamagedError, StateDatabase } from './state-db';
import type { StateMeta } from './state-db';
import {
  hasStateFiles,
  nextStateFileName,
  quarantineStateFile,
  readCurrent,
  removeStaleStateFiles,
  stateDirectory,
  switchCurrent,
} from './state-dir';

/**
 * Copies `sourcePath` into the state folder as the next state file, verifies
 * it (quick_check and meta row) and fsyncs it. CURRENT is not touched; on
 * failure the copy is deleted and the error is raised.
 */
export function stageStateCopy(
  stateDir: string,
  sourcePath: string,
): { readonly name: string; readonly meta: StateMeta } {
  const name = nextStateFileName(stateDir);
  const filePath = path.join(stateDir, name);
  try {
    fs.copyFileSync(sourcePath, filePath);
    const meta = StateDatabase.sealCopy(filePath, true);
    fsyncFileSync(filePath);
    return { name, meta };
  } catch (err) {
    removeSqliteFiles(filePath);
    throw err;
  }
}

/** Opens the live state database of `dir`, recovering when CURRENT's file is unusable. */
export function openLiveState(dir: string, logger: StorageLogger): StateDatabase {
  const stateDir = stateDirectory(dir);
  makeDirectoryDurablySync(stateDir);
  removeIncompleteSnapshots(snapshotsDirectory(dir));
  const current = readCurrent(stateDir);
  if (current === null) {
    if (hasStateFiles(stateDir)) {
      logger.warn({ folder: stateDir }, 'CURRENT is missing or invalid; recovering the state database');
    }
    return recoverState(dir, logger);
  }
  const filePath = path.join(stateDir, current);
  try {
    const database = StateDatabase.open(filePath);
    const removed = removeStaleStateFiles(stateDir, current);
    if (removed.length > 0) {
      logger.info({ folder: stateDir, removed }, 'removed leftovers of an interrupted state switch');
    }
    return database;
  } catch (err) {
    if (!isStateDamagedError(err)) throw err;
    const damagedPath = quarantineStateFile(stateDir, current);
    logger.warn({ err, file: filePath, damagedPath }, 'state database is damaged; recovering');
    return recoverState(dir, logger);
  }
}

/** Installs the newest snapshot that verifies, or an empty database, as the live state. */
function recoverState(dir: string, logger: StorageLogger): StateDatabase {
  const stateDir = stateDirectory(dir);
  for (const snapshot of listSnapshots(snapshotsDirectory(dir))) {
    const name = tryStageSnapshot(stateDir, snapshot, logger);
    if (name === null) continue;
    switchCurrent(stateDir, name);
    logger.warn(
      { snapshot: snapshot.path, index: snapshot.meta.index, term: snapshot.meta.term },
      'state database restored from the newest local snapshot',
    );
    return StateDatabase.open(path.join(stateDir, name));
  }
  const name = nextStateFileName(stateDir);
  StateDatabase.create(path.join(stateDir, name));
  switchCurrent(stateDir, name);
  logger.info({ file: path.join(stateDir, name) }, 'created an empty state database');
  return StateDatabase.open(path.join(stateDir, name));
}

function tryStageSnapshot(
  stateDir: string,
  snapshot: LocalSnapshot,
  logger: StorageLogger,
): string | null {
  try {
    const sha256 = fileSha256Sync(snapshot.path);
    if (sha256 !== snapshot.sha256) {
      logger.warn(
        { snapshot: snapshot.path, sha256, expectedSha256: snapshot.sha256 },
        'snapshot does not match its SHA-256 sidecar; skipping it',
      );
      return null;
    }
    return stageStateCopy(stateDir, snapshot.path).name;
  } catch (err) {
    if (!isStateDamagedError(err)) throw err;
    logger.warn({ err, snapshot: snapshot.path }, 'snapshot is damaged; skipping it');
    return null;
  }
}
