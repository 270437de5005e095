import { Packr } from 'msgpackr';
import type { Entry, Message } from '../consensus/types';

// Plain msgpack maps (no msgpackr records), so a frame decodes on its own
// without structure definitions shared between the two members.
const packr = new Packr({ useRecords: false });

/** Encodes a batch of Raft messages for one PeerFrame. */
export function encodeMessages(messages: readonly Message[]): Buffer {
  return packr.pack(messages);
}

/** Decodes a PeerFrame payload; throws on anything that is not a message list. */
export function decodeMessages(payload: Uint8Array): Message[] {
  const decoded: unknown = packr.unpack(payload);
  if (!Array.isArray(decoded)) {
    throw new Error(`invalid peer frame: expected a list of messages, got ${typeof decoded}`);
  }
  const messages = decoded as Message[];
  return messages.map((message) =>
    message.type === 'append' && message.entries.length > 0
      ? { ...message, entries: withOwnData(message.entries) }
      : message,
  );
}

/**
 * Returns the entries with their data copied into one new buffer. Decoded
 * data are views into the received frame, which gRPC may have cut from
 * Node's shared 8 KiB buffer pool. An entry stays in the in-memory log until
 * the next compaction, so a view would keep that whole pool block alive.
 */
function withOwnData(entries: readonly Entry[]): Entry[] {
  let bytes = 0;
  for (const entry of entries) bytes += entry.data.length;
  const owned = Buffer.allocUnsafeSlow(bytes);
  let offset = 0;
  return entries.map((entry) => {
    const data = owned.subarray(offset, offset + entry.data.length);
    data.set(entry.data);
    offset += entry.data.length;
    return { ...entry, data };
  });
}
