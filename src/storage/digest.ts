// The running digest of the state machine, part of the public contract: start
// with 32 zero bytes, then for each stored message in index order
// d = SHA-256(d || index as 8-byte big-endian || valueset as UTF-8).
// Members with the same applied index have the same digest.
import { createHash } from 'node:crypto';

export const digestBytes = 32;

/** Returns the digest of a state machine that stores no message: 32 zero bytes. */
export function initialDigest(): Buffer {
  return Buffer.alloc(digestBytes);
}

/** Returns the digest after storing `valueset` at `index`, given the previous digest. */
export function digestStep(prev: Buffer, index: number, valueset: string): Buffer {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new RangeError(`index must be a non-negative safe integer, got ${index}`);
  }
  const indexBytes = Buffer.allocUnsafe(8);
  indexBytes.writeUInt32BE(Math.floor(index / 2 ** 32), 0);
  indexBytes.writeUInt32BE(index >>> 0, 4);
  return createHash('sha256')
    .update(prev)
    .update(indexBytes)
    .update(valueset, 'utf8')
    .digest();
}
