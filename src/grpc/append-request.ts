// A strict decoder of the AppendRequest message for the Append and
// AppendStream handlers. protobufjs, which the proto loader uses, replaces
// bytes that are not UTF-8 with U+FFFD and cuts a string field that runs past
// the end of the message. Either would store a valueset the client did not send,
// and two different byte strings could then count as one valueset. This decoder
// rejects such a request instead.
import { isUtf8 } from 'node:buffer';
import { status } from '@grpc/grpc-js';
import { ReplogError } from './errors';
import { encodeVarint, grpcFrame, scanFields, wireLengthDelimited } from './protobuf-fields';

/** A decoded AppendRequest, or why the request bytes are not a valid one. */
export interface AppendRequestWire {
  readonly valueset: string;
  readonly invalid: ReplogError | null;
}

/** Field number of `valueset` in `message AppendRequest`. */
const valuesetField = 1;
const appendRequestFields = { [valuesetField]: { name: 'valueset', wireType: wireLengthDelimited } };

/**
 * Decodes an AppendRequest. Unknown fields are skipped, and of several
 * `valueset` fields the last one counts, as protobuf specifies. A malformed
 * message comes back with `invalid` set instead of an exception, so that the
 * handler can reply INVALID_ARGUMENT in request order.
 */
export function decodeAppendRequest(bytes: Buffer): AppendRequestWire {
  let valueset: Buffer | null = null;
  const problem = scanFields(bytes, appendRequestFields, (_field, start, end) => {
    valueset = bytes.subarray(start, end);
    return null;
  });
  if (problem !== null) return malformed(problem);
  // TypeScript does not follow the assignment in the callback.
  const found = valueset as Buffer | null;
  if (found === null) return { valueset: '', invalid: null };
  if (!isUtf8(found)) {
    return {
      valueset: '',
      invalid: new ReplogError(status.INVALID_ARGUMENT, 'invalid valueset: its bytes are not valid UTF-8; send text encoded as UTF-8'),
    };
  }
  return { valueset: found.toString('utf8'), invalid: null };
}

function malformed(reason: string): AppendRequestWire {
  return {
    valueset: '',
    invalid: new ReplogError(status.INVALID_ARGUMENT, `invalid AppendRequest: ${reason}; send a protobuf message as in proto/replog.proto`),
  };
}

/**
 * Returns the gRPC frame of an AppendRequest with `valueset`, for clients that
 * write HTTP/2 streams themselves. An empty valueset gives an empty message.
 */
export function appendRequestFrame(valueset: string): Buffer {
  const bytes = Buffer.from(valueset, 'utf8');
  if (bytes.length === 0) return grpcFrame(bytes);
  return grpcFrame(Buffer.concat([Buffer.from([0x0a]), encodeVarint(bytes.length), bytes]));
}
