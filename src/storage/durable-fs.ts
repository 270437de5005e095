// File operations that return only after the data reached the disk. A rename is
// durable only once the folder that contains it is fsync'd as well.
import fs from 'node:fs';
import path from 'node:path';

/** Suffixes of the side files SQLite keeps next to a database file. */
const sqliteSideFileSuffixes = ['-wal', '-shm', '-journal'] as const;

export function fsyncFileSync(filePath: string): void {
  const fd = fs.openSync(filePath, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Fsyncs a file on the thread pool, so a large file does not block the event loop. */
export async function fsyncFile(filePath: string): Promise<void> {
  const handle = await fs.promises.open(filePath, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function fsyncDirectorySync(directory: string): void {
  const fd = fs.openSync(directory, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces `filePath` by `data` atomically: writes a temp file, fsyncs it,
 * renames it over the target and fsyncs the folder. After a crash the file
 * contains either the old or the new data, and a stray `<file>.tmp` may remain.
 */
export function writeFileDurablySync(filePath: string, data: string): void {
  const tempPath = `${filePath}.tmp`;
  const fd = fs.openSync(tempPath, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tempPath, filePath);
  fsyncDirectorySync(path.dirname(filePath));
}

/**
 * Creates `directory` and any missing parents, and fsyncs the parent of each
 * folder it created, so that the new folders survive a crash.
 */
export function makeDirectoryDurablySync(directory: string): void {
  const firstCreated = fs.mkdirSync(directory, { recursive: true });
  if (firstCreated === undefined) return;
  const topParent = path.dirname(path.resolve(firstCreated));
  let current = path.resolve(directory);
  for (;;) {
    const parent = path.dirname(current);
    fsyncDirectorySync(parent);
    if (parent === topParent || parent === current) return;
    current = parent;
  }
}

/** Renames a file and fsyncs the folder, so the new name survives a crash. */
export function renameDurablySync(fromPath: string, toPath: string): void {
  fs.renameSync(fromPath, toPath);
  fsyncDirectorySync(path.dirname(toPath));
}

/** Deletes a file; returns false when it did not exist. */
export function removeFileIfExists(filePath: string): boolean {
  try {
    fs.unlinkSync(filePath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Deletes a SQLite database file together with its WAL, shared-memory and journal files. */
export function removeSqliteFiles(databasePath: string): void {
  removeFileIfExists(databasePath);
  for (const suffix of sqliteSideFileSuffixes) {
    removeFileIfExists(databasePath + suffix);
  }
}
