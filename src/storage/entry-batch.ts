// Encoding of a run of consecutive Raft log entries stored in one row of
// raft.db. Per entry: term as an unsigned 64-bit big-endian integer, type as
// one byte, data length as an unsigned 32-bit big-endian integer, then the
// data. Indexes are not stored: entry i of a row has index firstIndex + i.
import type { Entry } from '../consensus/types';

/** An entry as read from a row; its type byte is not checked yet. */
export interface StoredEntry {
  readonly index: number;
  readonly term: number;
  readonly type: number;
  readonly data: Buffer;
}

/** Bytes before each entry's data: term, type and data length. */
export const entryHeaderBytes = 13;

const termOffset = 0;
const typeOffset = 8;
const dataLengthOffset = 9;

/** Returns the encoded size of `entry` in bytes. */
export function encodedEntryBytes(entry: Entry): number {
  return entryHeaderBytes + entry.data.byteLength;
}

/** Encodes `entries` (consecutive indexes, checked by the caller) into one buffer. */
export function encodeEntryBatch(entries: readonly Entry[]): Buffer {
  let totalBytes = 0;
  for (const entry of entries) totalBytes += encodedEntryBytes(entry);
  const batch = Buffer.allocUnsafe(totalBytes);
  let offset = 0;
  for (const entry of entries) {
    if (!Number.isSafeInteger(entry.term) || entry.term < 0) {
      throw new RangeError(
        `entry ${entry.index}: term must be a non-negative safe integer, got ${entry.term}`,
      );
    }
    batch.writeUInt32BE(Math.floor(entry.term / 2 ** 32), offset + termOffset);
    batch.writeUInt32BE(entry.term >>> 0, offset + termOffset + 4);
    batch.writeUInt8(entry.type, offset + typeOffset);
    batch.writeUInt32BE(entry.data.byteLength, offset + dataLengthOffset);
    batch.set(entry.data, offset + entryHeaderBytes);
    offset += encodedEntryBytes(entry);
  }
  return batch;
}

/**
 * Decodes up to `countMax` entries from `batch`, the first at `firstIndex`. It
 * stops early at an entry that runs past the end of the buffer or whose term
 * is not a safe integer, so a damaged row yields its intact prefix. The data
 * of each entry is a view of `batch`, not a copy.
 */
export function decodeEntryBatch(
  batch: Buffer,
  firstIndex: number,
  countMax: number,
): StoredEntry[] {
  const entries: StoredEntry[] = [];
  let offset = 0;
  while (entries.length < countMax && offset + entryHeaderBytes <= batch.length) {
    const termHigh = batch.readUInt32BE(offset + termOffset);
    const term = termHigh * 2 ** 32 + batch.readUInt32BE(offset + termOffset + 4);
    const dataStart = offset + entryHeaderBytes;
    const dataEnd = dataStart + batch.readUInt32BE(offset + dataLengthOffset);
    if (!Number.isSafeInteger(term) || dataEnd > batch.length) break;
    const type = batch.readUInt8(offset + typeOffset);
    const index = firstIndex + entries.length;
    entries.push({ index, term, type, data: batch.subarray(dataStart, dataEnd) });
    offset = dataEnd;
  }
  return entries;
}

/**
 * Returns the bytes of `batch` that hold the given leading entries, decoded
 * from it by decodeEntryBatch(), to cut a row after them.
 */
export function entryBatchPrefix(batch: Buffer, leading: readonly StoredEntry[]): Buffer {
  const last = leading.at(-1);
  if (last === undefined) return batch.subarray(0, 0);
  const end = last.data.byteOffset - batch.byteOffset + last.data.byteLength;
  return batch.subarray(0, end);
}
