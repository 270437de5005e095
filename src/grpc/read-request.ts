// A strict decoder of the ReadRequest message for the Read handler. protobufjs
// reads a field cut off by the end of the message as a whole one: the request
// bytes 0a ff ff ff became from_index 2,097,151 instead of an error.
import { status } from '@grpc/grpc-js';
import { ReplogError } from './errors';
import { scanFields, varintLow32, varintValue, wireVarint } from './protobuf-fields';

/** A decoded ReadRequest, or why the request bytes are not a valid one. */
export interface ReadRequestWire {
  /** First index to read. It is exact up to 2^53 - 1, and the handler rejects a larger, rounded value. */
  readonly fromIndex: number;
  readonly limit: number;
  readonly follow: boolean;
  readonly invalid: ReplogError | null;
}

const fromIndexField = 1;
const limitField = 2;
const followField = 3;
const readRequestFields = {
  [fromIndexField]: { name: 'from_index', wireType: wireVarint },
  [limitField]: { name: 'limit', wireType: wireVarint },
  [followField]: { name: 'follow', wireType: wireVarint },
};

/**
 * Decodes a ReadRequest. Unknown fields are skipped, and of a repeated field
 * the last one counts, as protobuf specifies. `limit` keeps the low 32 bits
 * of a longer varint, as a uint32 field does. A malformed message comes back
 * with `invalid` set instead of an exception.
 */
export function decodeReadRequest(bytes: Buffer): ReadRequestWire {
  let fromIndex = 0;
  let limit = 0;
  let follow = false;
  const problem = scanFields(bytes, readRequestFields, (field, start, end) => {
    if (field === fromIndexField) fromIndex = varintValue(bytes, start, end);
    else if (field === limitField) limit = varintLow32(bytes, start, end);
    else follow = varintValue(bytes, start, end) !== 0;
    return null;
  });
  if (problem !== null) {
    const invalid = new ReplogError(status.INVALID_ARGUMENT, `invalid ReadRequest: ${problem}; send a protobuf message as in proto/replog.proto`);
    return { fromIndex: 0, limit: 0, follow: false, invalid };
  }
  return { fromIndex, limit, follow, invalid: null };
}
