// The folder `<dir>/state/` of the message state machine. A pointer file
// CURRENT names the live database file (state-000001.db, state-000002.db, ...).
//
// Switching to a new database: the new file is written completely and fsync'd
// first, then CURRENT is replaced via a temp file, fsync, rename and an fsync
// of the folder, and only then the old file is deleted. A crash at any point
// leaves CURRENT naming either the old or the new complete file. The next open
// deletes a stray temp file or a database that CURRENT does not name.
import fs from 'node:fs';
import path from 'node:path';
import { removeFileIfExists, removeSqliteFiles, writeFileDurablySync } from './durable-fs';

export const stateFolderName = 'state';
export const currentFileName = 'CURRENT';

const stateFilePattern = /^state-(\d+)\.db$/;
/** Any file whose name starts like a state file, quarantined ones included. */
const numberedFilePattern = /^state-(\d+)\.db/;
/** Matches a state file and the WAL, shared-memory or journal file that belongs to it. */
const stateSideFilePattern = /^(state-\d+\.db)(-wal|-shm|-journal)?$/;
/** Digits of the sequence number in a state file name. */
const stateNumberDigits = 6;

export function stateDirectory(dir: string): string {
  return path.join(dir, stateFolderName);
}

/** Returns the file name CURRENT contains, or null when CURRENT is missing or invalid. */
export function readCurrent(stateDir: string): string | null {
  let content: string;
  try {
    content = fs.readFileSync(path.join(stateDir, currentFileName), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const name = content.trim();
  return stateFilePattern.test(name) ? name : null;
}

/** Points CURRENT at `name` atomically and durably, then deletes every other state file. */
export function switchCurrent(stateDir: string, name: string): void {
  writeFileDurablySync(path.join(stateDir, currentFileName), `${name}\n`);
  removeStaleStateFiles(stateDir, name);
}

/** Returns a state file name numbered above every existing file, so no name is reused. */
export function nextStateFileName(stateDir: string): string {
  let highest = 0;
  for (const name of fs.readdirSync(stateDir)) {
    const match = numberedFilePattern.exec(name);
    if (match?.[1] !== undefined) highest = Math.max(highest, Number(match[1]));
  }
  const number = String(highest + 1).padStart(stateNumberDigits, '0');
  return `state-${number}.db`;
}

/** Returns whether the folder contains any state database file. */
export function hasStateFiles(stateDir: string): boolean {
  return fs.readdirSync(stateDir).some((name) => stateFilePattern.test(name));
}

/**
 * Deletes the leftovers of an interrupted switch: state files other than
 * `keepName` (with their side files) and CURRENT's temp file. Returns the
 * deleted names.
 */
export function removeStaleStateFiles(stateDir: string, keepName: string | null): string[] {
  const removed: string[] = [];
  if (removeFileIfExists(path.join(stateDir, `${currentFileName}.tmp`))) {
    removed.push(`${currentFileName}.tmp`);
  }
  for (const name of fs.readdirSync(stateDir)) {
    const match = stateSideFilePattern.exec(name);
    if (match === null || match[1] === keepName) continue;
    removeFileIfExists(path.join(stateDir, name));
    removed.push(name);
  }
  return removed;
}

/**
 * Renames a damaged state file (and its WAL file) to `<name>.damaged` so that
 * it can be inspected later; returns the new path.
 */
export function quarantineStateFile(stateDir: string, name: string): string {
  const damagedPath = path.join(stateDir, `${name}.damaged`);
  const filePath = path.join(stateDir, name);
  if (fs.existsSync(filePath)) fs.renameSync(filePath, damagedPath);
  if (fs.existsSync(`${filePath}-wal`)) fs.renameSync(`${filePath}-wal`, `${damagedPath}-wal`);
  removeSqliteFiles(filePath);
  return damagedPath;
}
