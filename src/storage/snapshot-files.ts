// Snapshot files of the state machine: `snapshot-<index>-<term>.db` in a
// snapshots folder (`<data dir>/snapshots`), each a self-contained SQLite file
// with a sidecar `.sha256` in sha256sum's format. A snapshot counts only once
// both files exist: the data is fsync'd under a `.partial` name, the sidecar
// is written durably, and then the data is renamed into place. Also the
// helpers the transport uses to send and receive snapshots in chunks with
// bounded memory. Functions here take the snapshots folder, not the data folder.
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { SnapshotMeta } from '../consensus/types';
import {
  makeDirectoryDurablySync,
  removeFileIfExists,
  renameDurablySync,
  writeFileDurablySync,
} from './durable-fs';

export const snapshotsFolderName = 'snapshots';
/** Snapshots kept on disk: the newest, and one older as a fallback when the newest is damaged. */
export const snapshotsKeptCount = 2;
/** Read size of the sha256 helpers, in bytes. */
const hashReadBytes = 1 << 20;

const snapshotFilePattern = /^snapshot-(\d+)-(\d+)\.db$/;
const sidecarPattern = /^([0-9a-f]{64})\b/;
/** Files that are incomplete by name: partial data (with SQLite side files) or a sidecar's temp file. */
const incompleteFilePattern = /(\.partial(-journal|-wal|-shm)?|\.sha256\.tmp)$/;
const sha256HexPattern = /^[0-9a-f]{64}$/;

export interface LocalSnapshot {
  readonly meta: SnapshotMeta;
  readonly path: string;
  /** Lowercase hex SHA-256 of the file, from the sidecar. */
  readonly sha256: string;
  readonly bytes: number;
}

/** Returns the snapshots folder of data folder `dir`. */
export function snapshotsDirectory(dir: string): string {
  return path.join(dir, snapshotsFolderName);
}

export function snapshotFilePath(snapshotsDir: string, meta: SnapshotMeta): string {
  return path.join(snapshotsDir, `snapshot-${meta.index}-${meta.term}.db`);
}

/** Returns a fresh `.partial` path in the snapshots folder, creating the folder. */
export function snapshotTempPath(snapshotsDir: string, meta?: SnapshotMeta): string {
  makeDirectoryDurablySync(snapshotsDir);
  const base =
    meta === undefined ? 'creating.db' : path.basename(snapshotFilePath(snapshotsDir, meta));
  return path.join(snapshotsDir, `${base}.${randomUUID()}.partial`);
}

function readSidecar(snapshotPath: string): string | null {
  try {
    const content = fs.readFileSync(`${snapshotPath}.sha256`, 'utf8');
    return sidecarPattern.exec(content)?.[1] ?? null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Lists the complete snapshots (data and sidecar present), newest first. */
export function listSnapshots(snapshotsDir: string): LocalSnapshot[] {
  if (!fs.existsSync(snapshotsDir)) return [];
  const snapshots: LocalSnapshot[] = [];
  for (const name of fs.readdirSync(snapshotsDir)) {
    const match = snapshotFilePattern.exec(name);
    if (match === null) continue;
    const filePath = path.join(snapshotsDir, name);
    const sha256 = readSidecar(filePath);
    if (sha256 === null) continue;
    const meta = { index: Number(match[1]), term: Number(match[2]) };
    snapshots.push({ meta, path: filePath, sha256, bytes: fs.statSync(filePath).size });
  }
  return snapshots.sort((a, b) => b.meta.index - a.meta.index || b.meta.term - a.meta.term);
}

export function latestSnapshot(snapshotsDir: string): LocalSnapshot | null {
  return listSnapshots(snapshotsDir)[0] ?? null;
}

/**
 * Deletes all but the newest `keepCount` snapshots, never `keepPath`. A sender
 * that already opened a deleted file can still read it to the end. Returns the
 * deleted paths.
 */
export function pruneSnapshots(
  snapshotsDir: string,
  keepCount: number = snapshotsKeptCount,
  keepPath?: string,
): string[] {
  const removed: string[] = [];
  for (const snapshot of listSnapshots(snapshotsDir).slice(keepCount)) {
    if (snapshot.path === keepPath) continue;
    removeFileIfExists(snapshot.path);
    removeFileIfExists(`${snapshot.path}.sha256`);
    removed.push(snapshot.path);
  }
  return removed;
}

/**
 * Deletes the snapshots below `index`, never `keepPath`, and returns their
 * paths. Once the log starts above a snapshot, the member can neither restore
 * from it nor catch a follower up with it.
 */
export function pruneSnapshotsBelow(snapshotsDir: string, index: number, keepPath?: string): string[] {
  const removed: string[] = [];
  for (const snapshot of listSnapshots(snapshotsDir)) {
    if (snapshot.meta.index >= index || snapshot.path === keepPath) continue;
    removeFileIfExists(snapshot.path);
    removeFileIfExists(`${snapshot.path}.sha256`);
    removed.push(snapshot.path);
  }
  return removed;
}

/**
 * Deletes what an interrupted snapshot left behind: `.partial` files and
 * sidecars without data. Call it only while no snapshot is being written.
 */
export function removeIncompleteSnapshots(snapshotsDir: string): string[] {
  if (!fs.existsSync(snapshotsDir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(snapshotsDir)) {
    const orphanSidecar =
      name.endsWith('.sha256') && !fs.existsSync(path.join(snapshotsDir, name.slice(0, -7)));
    if (!orphanSidecar && !incompleteFilePattern.test(name)) continue;
    removeFileIfExists(path.join(snapshotsDir, name));
    removed.push(name);
  }
  return removed;
}

/**
 * Publishes an fsync'd snapshot file under its final name: writes the sidecar
 * durably, then renames `sourcePath` into place and fsyncs the folder.
 */
export function publishSnapshot(
  snapshotsDir: string,
  sourcePath: string,
  meta: SnapshotMeta,
  sha256: string,
): LocalSnapshot {
  const finalPath = snapshotFilePath(snapshotsDir, meta);
  const bytes = fs.statSync(sourcePath).size;
  writeFileDurablySync(`${finalPath}.sha256`, `${sha256}  ${path.basename(finalPath)}\n`);
  renameDurablySync(sourcePath, finalPath);
  return { meta, path: finalPath, sha256, bytes };
}

export async function fileSha256(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  const stream = fs.createReadStream(filePath, { highWaterMark: hashReadBytes });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Blocking variant of fileSha256() for start-up paths that are synchronous. */
export function fileSha256Sync(filePath: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(hashReadBytes);
  const fd = fs.openSync(filePath, 'r');
  try {
    let bytesRead: number;
    while ((bytesRead = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0) {
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Reads a snapshot file in chunks of at most `chunkBytes`; each chunk is a new buffer. */
export async function* snapshotChunks(
  filePath: string,
  chunkBytes: number,
): AsyncIterable<Uint8Array> {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
    throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  }
  const handle = await fs.promises.open(filePath, 'r');
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(chunkBytes);
      const { bytesRead } = await handle.read(chunk, 0, chunkBytes, null);
      if (bytesRead === 0) return;
      yield chunk.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Receives one snapshot from a peer: streams the chunks to a `.partial` file
 * (memory use is one chunk), then finish() checks size and SHA-256, fsyncs and
 * publishes it. Writes are synchronous, so a chunk blocks the event loop for
 * about one write into the page cache.
 */
export class SnapshotReceiver {
  readonly partialPath: string;
  private readonly expectedSha256: string;
  private readonly hash = createHash('sha256');
  private fd: number | null;
  private bytesWritten = 0;

  constructor(
    private readonly snapshotsDir: string,
    readonly meta: SnapshotMeta,
    expectedSha256: string,
    private readonly expectedBytes: number,
  ) {
    this.expectedSha256 = expectedSha256.toLowerCase();
    if (!sha256HexPattern.test(this.expectedSha256)) {
      throw new RangeError(`expected SHA-256 must be 64 hex digits, got ${expectedSha256}`);
    }
    if (!Number.isSafeInteger(expectedBytes) || expectedBytes < 0) {
      throw new RangeError(`expected size must be a non-negative integer, got ${expectedBytes}`);
    }
    this.partialPath = snapshotTempPath(snapshotsDir, meta);
    this.fd = fs.openSync(this.partialPath, 'w');
  }

  /** Appends a chunk; throws (and aborts) when the data outgrows the expected size. */
  write(chunk: Uint8Array): void {
    const fd = this.openFd();
    if (this.bytesWritten + chunk.byteLength > this.expectedBytes) {
      this.abort();
      throw new Error(
        `snapshot ${this.meta.index}-${this.meta.term} exceeds the expected ${this.expectedBytes} bytes`,
      );
    }
    let offset = 0;
    while (offset < chunk.byteLength) {
      offset += fs.writeSync(fd, chunk, offset, chunk.byteLength - offset);
    }
    this.hash.update(chunk);
    this.bytesWritten += chunk.byteLength;
  }

  /**
   * Verifies size and SHA-256, fsyncs, publishes the snapshot under its final
   * name and prunes older snapshots; returns the final path. On a mismatch it
   * aborts and throws.
   */
  finish(): string {
    const fd = this.openFd();
    const sha256 = this.hash.digest('hex');
    const problem = this.findMismatch(sha256);
    if (problem !== null) {
      this.abort();
      throw new Error(`received snapshot ${this.meta.index}-${this.meta.term} ${problem}`);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    this.fd = null;
    const snapshot = publishSnapshot(this.snapshotsDir, this.partialPath, this.meta, sha256);
    pruneSnapshots(this.snapshotsDir, snapshotsKeptCount, snapshot.path);
    return snapshot.path;
  }

  /** Closes and deletes the partial file; safe to call more than once. */
  abort(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
    removeFileIfExists(this.partialPath);
  }

  private findMismatch(sha256: string): string | null {
    if (this.bytesWritten !== this.expectedBytes) {
      return `has ${this.bytesWritten} bytes, expected ${this.expectedBytes}`;
    }
    if (sha256 !== this.expectedSha256) {
      return `has SHA-256 ${sha256}, expected ${this.expectedSha256}`;
    }
    return null;
  }

  private openFd(): number {
    if (this.fd === null) {
      throw new Error(`snapshot receiver for ${this.partialPath} is already finished or aborted`);
    }
    return this.fd;
  }
}
