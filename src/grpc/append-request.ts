// A strict decoder of the AppendRequest message for the Append and
// AppendStream handlers. protobufjs, which the proto loader uses, replaces
// bytes that are not UTF-8 with U+FFFD and cuts a string field that runs past
// the end of the message. Either would store a valueset the client did not send,
// and two different byte strings could then count as one valueset. This decoder
// rejects such a request instead.
import { isUtf8 } from 'node:buffer';
import { status } from '@grpc/grpc-js';
import { ReplogError } from './errors';

/** A decoded AppendRequest, or why the request bytes are not a valid one. */
export interface AppendRequestWire {
  readonly valueset: string;
  readonly invalid: ReplogError | null;
}

const wireVarint = 0;
const wireFixed64 = 1;
const wireLengthDelimited = 2;
const wireFixed32 = 5;
/** Field number of `valueset` in `message AppendRequest`. */
const valuesetField = 1;

/** A varint and the offset just after it. */
interface Varint {
  readonly value: number;
  readonly next: number;
}

/**
 * Decodes an AppendRequest. Unknown fields are skipped, and of several
 * `valueset` fields the last one counts, as protobuf specifies. A malformed
 * message comes back with `invalid` set instead of an exception, so that the
 * handler can reply INVALID_ARGUMENT in request order.
 */
export function decodeAppendRequest(bytes: Buffer): AppendRequestWire {
  let valueset: Buffer | null = null;
  let offset = 0;
  while (offset < bytes.length) {
    const key = readVarint(bytes, offset);
    if (key === null) return malformed(`the field key at byte ${offset} is cut off or longer than 5 bytes`);
    const field = Math.floor(key.value / 8);
    const wireType = key.value % 8;
    offset = key.next;
    if (field === valuesetField && wireType !== wireLengthDelimited) {
      return malformed(`field 1 (valueset) has wire type ${wireType}; expected 2 (length-delimited)`);
    }
    if (wireType === wireVarint) {
      const skipped = readVarint(bytes, offset, 10);
      if (skipped === null) return malformed(`the varint of field ${field} at byte ${offset} is cut off`);
      offset = skipped.next;
    } else if (wireType === wireFixed64 || wireType === wireFixed32) {
      offset += wireType === wireFixed64 ? 8 : 4;
      if (offset > bytes.length) return malformed(`field ${field} runs past the end of the ${bytes.length}-byte message`);
    } else if (wireType === wireLengthDelimited) {
      const length = readVarint(bytes, offset);
      if (length === null) return malformed(`the length of field ${field} at byte ${offset} is cut off or longer than 5 bytes`);
      const end = length.next + length.value;
      if (end > bytes.length) {
        return malformed(`field ${field} declares ${length.value} bytes, but the ${bytes.length}-byte message ends first`);
      }
      if (field === valuesetField) valueset = bytes.subarray(length.next, end);
      offset = end;
    } else {
      return malformed(`field ${field} has wire type ${wireType}, which proto3 messages do not use`);
    }
  }
  if (valueset === null) return { valueset: '', invalid: null };
  if (!isUtf8(valueset)) {
    return {
      valueset: '',
      invalid: new ReplogError(status.INVALID_ARGUMENT, 'invalid valueset: its bytes are not valid UTF-8; send text encoded as UTF-8'),
    };
  }
  return { valueset: valueset.toString('utf8'), invalid: null };
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

function malformed(reason: string): AppendRequestWire {
  return {
    valueset: '',
    invalid: new ReplogError(status.INVALID_ARGUMENT, `invalid AppendRequest: ${reason}; send a protobuf message as in proto/replog.proto`),
  };
}
