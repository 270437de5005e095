// The running digest of the state machine, part of the public contract: start
// with 32 zero bytes, then for each stored message in index order
// d = SHA-256(d || index as 8-byte big-endian || valueset as UTF-8).
// Members with the same applied index have the same digest.
//
// Each step hashes one input assembled in a scratch buffer reused across calls.
// crypto.hash() (Node 20.12 and later) needs no Hash object per step, and its
// 'binary' (latin1 string) output allocates no Buffer. Measured with Node
// 20.20: about 0.5 µs per step for 80-byte valuesets, against 1.5 µs with a
// Buffer output and 2 to 3 µs with createHash() and three updates.
import crypto from 'node:crypto';

export const digestBytes = 32;

/** Bytes of the big-endian index that follows the previous digest. */
const indexBytes = 8;
/** Offset of the valueset in the hash input. */
const valuesetOffset = digestBytes + indexBytes;
/** Initial size of the scratch buffer; it grows for larger valuesets. */
const scratchBytesInitial = 4096;
/**
 * Maximum size the scratch buffer grows to: room for a valueset of 65,536
 * UTF-16 code units. A longer input gets a buffer of its own, so one odd call
 * does not keep a large buffer alive.
 */
const scratchBytesMax = valuesetOffset + 3 * 65_536;

let scratch = Buffer.allocUnsafe(scratchBytesInitial);

/** One-shot SHA-256 with the digest as a latin1 string of 32 characters. */
const sha256Binary: (input: Uint8Array) => string =
  typeof crypto.hash === 'function'
    ? (input) => crypto.hash('sha256', input, 'binary')
    : (input) => crypto.createHash('sha256').update(input).digest('binary');

/** Returns the digest of a state machine that stores no message: 32 zero bytes. */
export function initialDigest(): Buffer {
  return Buffer.alloc(digestBytes);
}

/**
 * A running digest advanced one stored message at a time. It keeps the value
 * as a latin1 string between steps, so a step allocates no Buffer.
 */
export class DigestChain {
  private binary: string;

  constructor(start: Buffer) {
    if (start.length !== digestBytes) {
      throw new RangeError(`digest must be ${digestBytes} bytes, got ${start.length}`);
    }
    this.binary = start.toString('latin1');
  }

  /** Advances the digest by `valueset` stored at `index`. */
  add(index: number, valueset: string): void {
    // A UTF-16 code unit takes at most 3 UTF-8 bytes, so this always fits.
    const input = this.prepareInput(index, valueset.length * 3);
    const written = input.write(valueset, valuesetOffset, 'utf8');
    this.binary = sha256Binary(hashInput(input, valuesetOffset + written));
  }

  /** Advances the digest by a valueset given as its UTF-8 bytes; same result as add(). */
  addUtf8(index: number, valuesetUtf8: Uint8Array): void {
    const input = this.prepareInput(index, valuesetUtf8.byteLength);
    input.set(valuesetUtf8, valuesetOffset);
    this.binary = sha256Binary(hashInput(input, valuesetOffset + valuesetUtf8.byteLength));
  }

  /** Returns the current digest as 32 bytes. */
  value(): Buffer {
    return Buffer.from(this.binary, 'latin1');
  }

  /**
   * Writes the current digest and `index` at the start of the scratch buffer,
   * or of a new buffer when `valuesetBytesMax` more bytes would not fit even
   * after growing it, and returns that buffer.
   */
  private prepareInput(index: number, valuesetBytesMax: number): Buffer {
    if (!Number.isSafeInteger(index) || index < 0) {
      throw new RangeError(`index must be a non-negative safe integer, got ${index}`);
    }
    const inputBytes = valuesetOffset + valuesetBytesMax;
    if (scratch.length < inputBytes && inputBytes <= scratchBytesMax) {
      scratch = Buffer.allocUnsafe(inputBytes);
    }
    const input = scratch.length >= inputBytes ? scratch : Buffer.allocUnsafe(inputBytes);
    input.write(this.binary, 0, 'latin1');
    input.writeUInt32BE(Math.floor(index / 2 ** 32), digestBytes);
    input.writeUInt32BE(index >>> 0, digestBytes + 4);
    return input;
  }
}

/** Returns the digest after storing `valueset` at `index`, given the previous digest. */
export function digestStep(prev: Buffer, index: number, valueset: string): Buffer {
  const chain = new DigestChain(prev);
  chain.add(index, valueset);
  return chain.value();
}

/** Returns the first `length` bytes of `input` as a plain view, cheaper than subarray(). */
function hashInput(input: Buffer, length: number): Uint8Array {
  return new Uint8Array(input.buffer, input.byteOffset, length);
}
