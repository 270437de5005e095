// Encoding of one client message in the data of a Normal log entry:
// receivedAtMs as a signed 64-bit big-endian integer, then the valueset's UTF-8
// bytes up to the end of the data. No JSON, so encoding is one copy.
import { isUtf8 } from 'node:buffer';
import type { MessageRecord } from './types';

/**
 * Maximum size of one valueset in UTF-8 bytes. The public API rejects an empty
 * valueset or a longer one with INVALID_ARGUMENT, so the limit is part of the
 * contract, and it bounds the size of every Normal entry to 8 + 65,536 bytes.
 * The codec itself does not check it: a committed entry is applied whatever it
 * holds, and the ingest path validates before proposing.
 */
export const valuesetBytesMax = 65_536;

/** Returns the UTF-8 length of a valueset longer than valuesetBytesMax, or null for one that fits. */
export function oversizeValuesetBytes(valueset: string): number | null {
  // A UTF-16 unit takes at most 3 UTF-8 bytes, so most valuesets need no count.
  if (valueset.length * 3 <= valuesetBytesMax) return null;
  const bytes = Buffer.byteLength(valueset, 'utf8');
  return bytes > valuesetBytesMax ? bytes : null;
}

/** Size of the receivedAtMs prefix in bytes. */
const receivedAtBytes = 8;

export function encodeMessage(record: MessageRecord): Uint8Array {
  checkReceivedAtMs(record);
  const valuesetBytes = Buffer.byteLength(record.valueset, 'utf8');
  const data = Buffer.allocUnsafe(receivedAtBytes + valuesetBytes);
  writeMessage(data, record);
  return data;
}

/**
 * Encodes `records` into one new buffer and returns a view of it for each
 * record, in order. Use it for data that lives long, such as the entries of
 * one proposal batch, which stay in the in-memory Raft log until compaction.
 * encodeMessage() uses Buffer.allocUnsafe(), which cuts buffers under 4 KiB
 * from a shared 8 KiB pool (Node.js Buffer documentation, poolSize). A
 * long-lived entry cut from it keeps the whole 8 KiB alive, so entries
 * interleaved with short-lived buffers cost several times their size.
 */
export function encodeMessageBatch(records: readonly MessageRecord[]): Buffer[] {
  const sizes = records.map((record) => {
    checkReceivedAtMs(record);
    return receivedAtBytes + Buffer.byteLength(record.valueset, 'utf8');
  });
  const batch = Buffer.allocUnsafeSlow(sizes.reduce((sum, size) => sum + size, 0));
  const views: Buffer[] = [];
  let offset = 0;
  records.forEach((record, i) => {
    const view = batch.subarray(offset, offset + sizes[i]!);
    writeMessage(view, record);
    views.push(view);
    offset += view.length;
  });
  return views;
}

function checkReceivedAtMs(record: MessageRecord): void {
  if (!Number.isSafeInteger(record.receivedAtMs)) {
    throw new RangeError(
      `receivedAtMs must be a safe integer, got ${record.receivedAtMs}`,
    );
  }
}

/** Writes `record` into `data`, which is exactly its encoded size. */
function writeMessage(data: Buffer, record: MessageRecord): void {
  data.writeBigInt64BE(BigInt(record.receivedAtMs), 0);
  data.write(record.valueset, receivedAtBytes, 'utf8');
}

/**
 * Decodes the data of a Normal entry. Invalid UTF-8 becomes U+FFFD, as in every
 * other UTF-8 decoder, and a leading byte order mark is kept as part of the
 * valueset. Throws a RangeError when the data is shorter than the prefix.
 */
export function decodeMessage(data: Uint8Array): MessageRecord {
  const buffer = asBuffer(data);
  const receivedAtMs = readReceivedAtMs(buffer);
  return { valueset: buffer.toString('utf8', receivedAtBytes), receivedAtMs };
}

/**
 * A decoded message as the state machine stores it. The valueset is a view of
 * its UTF-8 bytes when they are valid UTF-8, which saves decoding to a string
 * and encoding it again. Otherwise it is the string decodeMessage() returns.
 */
export interface StorableMessage {
  readonly valueset: string | Buffer;
  readonly receivedAtMs: number;
}

/**
 * Decodes the data of a Normal entry for storing. Stores the same valueset as
 * decodeMessage() and throws in the same cases.
 */
export function decodeStorableMessage(data: Uint8Array): StorableMessage {
  const buffer = asBuffer(data);
  const receivedAtMs = readReceivedAtMs(buffer);
  const valuesetUtf8 = buffer.subarray(receivedAtBytes);
  if (isUtf8(valuesetUtf8)) return { valueset: valuesetUtf8, receivedAtMs };
  return { valueset: valuesetUtf8.toString('utf8'), receivedAtMs };
}

/** Returns a Buffer view of `data`, without copying. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Reads the receivedAtMs prefix. Throws a RangeError when the data is shorter
 * than the prefix or the value is not a safe integer.
 */
function readReceivedAtMs(data: Buffer): number {
  if (data.byteLength < receivedAtBytes) {
    throw new RangeError(
      `message data must be at least ${receivedAtBytes} bytes, got ${data.byteLength}`,
    );
  }
  // hi * 2^32 + lo is exact up to 2^53 in magnitude and rounds every larger
  // value to one that is not a safe integer either, so no BigInt is needed.
  const receivedAtMs = data.readInt32BE(0) * 2 ** 32 + data.readUInt32BE(4);
  if (!Number.isSafeInteger(receivedAtMs)) {
    throw new RangeError(
      `receivedAtMs must be a safe integer, got ${data.readBigInt64BE(0)}`,
    );
  }
  return receivedAtMs;
}
