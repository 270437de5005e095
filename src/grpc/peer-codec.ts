import { Packr } from 'msgpackr';
import type { Message } from '../consensus/types';

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
  return decoded as Message[];
}
