// A strict reader of the fields of one protobuf message, for the request
// decoders of the Ingest service. protobufjs, which the proto loader uses,
// reads a field cut off by the end of the message as if it were whole, and
// a request decoded that way could read or store what the client did not send.

/** Wire types of proto3 messages. */
export const wireVarint = 0;
export const wireFixed64 = 1;
export const wireLengthDelimited = 2;
export const wireFixed32 = 5;

const wireTypeNames: Readonly<Record<number, string>> = {
  [wireVarint]: 'varint',
  [wireFixed64]: '64-bit',
  [wireLengthDelimited]: 'length-delimited',
  [wireFixed32]: '32-bit',
};

/** A field the decoder reads: its name for messages, and the wire type it must have. */
export interface FieldSpec {
  readonly name: string;
  readonly wireType: number;
}

/** A varint and the offset just after it. */
interface Varint {
  readonly value: number;
  readonly next: number;
}

/**
 * Walks the fields of `bytes` and calls `take` with the value of each field
 * in `known`: the bytes of its varint, or the payload of a length-delimited
 * field, as [start, end). Unknown fields are skipped. Returns why the message
 * is malformed, or the first reason `take` returns, or null.
 */
export function scanFields(
  bytes: Buffer,
  known: Readonly<Record<number, FieldSpec>>,
  take: (field: number, start: number, end: number) => string | null,
): string | null {
  let offset = 0;
  while (offset < bytes.length) {
    const key = readVarint(bytes, offset);
    if (key === null) return `the field key at byte ${offset} is cut off or longer than 5 bytes`;
    const field = Math.floor(key.value / 8);
    const wireType = key.value % 8;
    offset = key.next;
    const spec = known[field];
    if (spec !== undefined && wireType !== spec.wireType) {
      return `field ${field} (${spec.name}) has wire type ${wireType}; expected ${spec.wireType} (${wireTypeNames[spec.wireType]})`;
    }
    const start = offset;
    if (wireType === wireVarint) {
      const skipped = readVarint(bytes, offset, 10);
      if (skipped === null) return `the varint of field ${field} at byte ${offset} is cut off or longer than 10 bytes`;
      offset = skipped.next;
    } else if (wireType === wireFixed64 || wireType === wireFixed32) {
      offset += wireType === wireFixed64 ? 8 : 4;
      if (offset > bytes.length) return `field ${field} runs past the end of the ${bytes.length}-byte message`;
    } else if (wireType === wireLengthDelimited) {
      const length = readVarint(bytes, offset);
      if (length === null) return `the length of field ${field} at byte ${offset} is cut off or longer than 5 bytes`;
      const end = length.next + length.value;
      if (end > bytes.length) return `field ${field} declares ${length.value} bytes, but the ${bytes.length}-byte message ends first`;
      if (spec !== undefined) {
        const problem = take(field, length.next, end);
        if (problem !== null) return problem;
      }
      offset = end;
      continue;
    } else {
      return `field ${field} has wire type ${wireType}, which proto3 messages do not use`;
    }
    if (spec !== undefined) {
      const problem = take(field, start, offset);
      if (problem !== null) return problem;
    }
  }
  return null;
}

/**
 * Returns the value of the varint in bytes [start, end). Above 2^53 it is
 * rounded, and never below 2^53, so a caller can still tell that it is too large.
 */
export function varintValue(bytes: Buffer, start: number, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = start; i < end; i++) {
    value += (bytes[i]! & 0x7f) * scale;
    scale *= 128;
  }
  return value;
}

/** Returns the low 32 bits of the varint in bytes [start, end), as proto3 reads a uint32 field. */
export function varintLow32(bytes: Buffer, start: number, end: number): number {
  // The first five bytes carry bits 0 to 34.
  return varintValue(bytes, start, Math.min(end, start + 5)) % 2 ** 32;
}

/**
 * Reads an unsigned varint of at most `bytesMax` bytes at `offset`; returns
 * null when it is cut off or longer. Five bytes hold any 32-bit value.
 */
function readVarint(bytes: Buffer, offset: number, bytesMax = 5): Varint | null {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < bytesMax; i++) {
    const byte = bytes[offset + i];
    if (byte === undefined) return null;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return { value, next: offset + i + 1 };
    scale *= 128;
  }
  return null;
}

/** Encodes `value`, a non-negative safe integer, as a protobuf varint. */
export function encodeVarint(value: number): Buffer {
  const out = Buffer.allocUnsafe(varintBytes(value));
  writeVarint(out, 0, value);
  return out;
}

/** Returns the number of bytes that `value`, a non-negative safe integer, takes as a varint. */
export function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

/** Writes `value`, a non-negative safe integer, as a varint at `at` in `target`, and returns the offset after it. */
export function writeVarint(target: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  target[at++] = value;
  return at;
}

/** Returns `message` as one uncompressed gRPC message frame: a zero flag byte, its length, then the message. */
export function grpcFrame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}
