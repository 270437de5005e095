// Damage to an SQLite write-ahead log (WAL) file as a crash leaves it: garbage
// after the last frame (a write that never completed), or the last frame cut in
// half (a torn write of the last transaction). Layout per the SQLite file
// format: a 32-byte header (page size at byte 8, salts at bytes 16 and 20),
// then frames of a 24-byte header (salts at bytes 8 and 12) plus one page.
import * as fs from 'node:fs';

const walHeaderBytes = 32;
const frameHeaderBytes = 24;

/** Appends `byteCount` pseudo-random bytes to the end of `file`. */
export function appendGarbage(file: string, byteCount: number): void {
  const garbage = Buffer.alloc(byteCount);
  for (let i = 0; i < byteCount; i++) garbage[i] = (i * 151 + 89) & 0xff;
  fs.appendFileSync(file, garbage);
}

/** Counts the frames after the header whose salts match the header's: the current WAL generation. */
export function countCurrentFrames(wal: Buffer): number {
  if (wal.length < walHeaderBytes) return 0;
  const pageBytes = wal.readUInt32BE(8);
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  const frameBytes = frameHeaderBytes + pageBytes;
  let count = 0;
  for (let at = walHeaderBytes; at + frameBytes <= wal.length; at += frameBytes) {
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break;
    count++;
  }
  return count;
}

/**
 * Truncates `file` in the middle of its last current frame, so the last
 * transaction has no commit frame and SQLite drops it on the next open.
 * Returns the number of bytes removed; 0 when the WAL has no current frame.
 */
export function tearLastFrame(file: string): number {
  const wal = fs.readFileSync(file);
  const frames = countCurrentFrames(wal);
  if (frames === 0) return 0;
  const frameBytes = frameHeaderBytes + wal.readUInt32BE(8);
  const keepBytes = walHeaderBytes + (frames - 1) * frameBytes + Math.floor(frameBytes / 2);
  fs.truncateSync(file, keepBytes);
  return wal.length - keepBytes;
}
