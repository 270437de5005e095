// The Raft and Forward calls of the Peer service, served straight from Node's
// HTTP/2 streams. They carry every Raft message and every forwarded append
// between members. Served by grpc-js, they spent 5 to 7% of the members' CPU
// samples at 100 and 1,000 appends a second in grpc-js's own code
// (BENCHMARKS.md, section "2026-12-06 03:20-04:20 UTC"). The wire format
// stays gRPC's, so members of older builds, whose peer clients are grpc-js,
// talk to these handlers unchanged.
import type * as http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Member } from '../node/member';
import type { AppendResult } from '../node/waiters';
import { toReplogError } from './errors';
import { decodeMessages } from './peer-codec';
import { scanFields, varintBytes, wireLengthDelimited, wireVarint, writeVarint } from './protobuf-fields';
import { GrpcMessageReader, prefixBytes, type FramingProblem } from './grpc-messages';
import { forwardBatchMax } from './peer-link';
import { remoteAddress, ServedCall, type CallLabels } from './served-call';
import { appendReplyBytes, writeAppendReply, type AppendReplyWire, type CallHandler } from './unary-append';

/** The HTTP/2 :path of the Raft method. */
export const raftPath = '/replog.v1.Peer/Raft';
/** The HTTP/2 :path of the Forward method. */
export const forwardPath = '/replog.v1.Peer/Forward';

/**
 * Time between two warnings about invalid Raft frames, over all Raft calls.
 * Each warning's `dropped` field counts the frames since the one before.
 */
const invalidFrameWarnIntervalMs = 10_000;
/** The PeerAck reply of a Raft call: an empty message behind its 5-byte prefix. */
const emptyMessage = Buffer.alloc(prefixBytes);
/** The payload of a PeerFrame that has none. */
const noPayload = Buffer.alloc(0);

const peerFrameFields = { 1: { name: 'payload', wireType: wireLengthDelimited } };
/** Labels of the failures of Raft and Forward calls in the log. */
const peerCallLabels: CallLabels = { failed: 'peer call failed', remote: 'peer' };

const forwardBatchFields = {
  1: { name: 'batch_id', wireType: wireVarint },
  2: { name: 'valuesets', wireType: wireLengthDelimited },
};

/** One reply of a ForwardReplies message, as AppendReply encodes it. */
/** Invalid Raft frames dropped since the last warning, over all Raft calls of a member. */
interface DroppedFrames {
  count: number;
  warnedAtMs: number;
}

/** Returns the routes of the Raft and Forward calls, for routeCalls(). */
export function peerRoutes(member: Member, messageBytesMax: number, log: Logger): [string, CallHandler][] {
  // A peer whose frames fail keeps sending such frames, several a second, and may open a new call for each.
  const dropped: DroppedFrames = { count: 0, warnedAtMs: -Infinity };
  return [
    [raftPath, (stream, headers) => serveRaft(stream, headers, member, messageBytesMax, log, dropped)],
    [forwardPath, (stream, headers) => serveForward(stream, headers, member, messageBytesMax, log)],
  ];
}

/**
 * Hands each PeerFrame of a Raft call to the member. A frame that does not
 * decode is dropped, as Raft resends what is lost. A call whose framing is
 * broken ends with an error status, and the peer opens a new one.
 */
function serveRaft(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  member: Member,
  messageBytesMax: number,
  log: Logger,
  dropped: DroppedFrames,
): void {
  const call = new ServedCall(stream, headers, log, peerCallLabels);
  const reader = new GrpcMessageReader(messageBytesMax);
  const messages: Buffer[] = [];
  const receive = (message: Buffer): void => {
    let payload: Buffer = noPayload;
    try {
      const problem = scanFields(message, peerFrameFields, (_field, start, end) => {
        payload = message.subarray(start, end);
        return null;
      });
      if (problem !== null) throw new Error(`invalid PeerFrame: ${problem}`);
      member.receive(decodeMessages(payload));
    } catch (err) {
      dropped.count += 1;
      const now = performance.now();
      if (now - dropped.warnedAtMs < invalidFrameWarnIntervalMs) return;
      log.warn({ err: (err as Error).message, peer: remoteAddress(stream), dropped: dropped.count }, 'dropped an invalid peer frame');
      dropped.warnedAtMs = now;
      dropped.count = 0;
    }
  };
  stream.on('data', (chunk: Buffer) => {
    if (call.failed) return;
    const problem = reader.push(chunk, messages);
    for (const message of messages) receive(message);
    messages.length = 0;
    if (problem !== null) call.fail(problem);
  });
  call.onClientEnd(reader, () => call.finish(emptyMessage));
}

/**
 * Appends the valuesets of each ForwardBatch as forwarded appends and writes
 * one ForwardReplies per batch once all of its appends have settled. Replies
 * may come in another order than their batches: the peer matches them by
 * batch id. The call ends once the peer has ended its side and every batch
 * has its reply.
 */
function serveForward(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  member: Member,
  messageBytesMax: number,
  log: Logger,
): void {
  const call = new ServedCall(stream, headers, log, peerCallLabels);
  const reader = new GrpcMessageReader(messageBytesMax);
  const messages: Buffer[] = [];
  let ended = false;
  let pending = 0;
  const maybeFinish = (): void => {
    if (ended && pending === 0 && call.open) call.finish();
  };
  const serveBatch = (message: Buffer): void => {
    const batch = decodeForwardBatch(message);
    if ('problem' in batch) {
      call.fail(batch.problem);
      return;
    }
    pending++;
    void Promise.allSettled(batch.valuesets.map((valueset) => appendForwarded(member, valueset))).then((results) => {
      pending--;
      if (!call.open) return;
      const reply = encodeForwardReplies(batch.batchId, results.map(forwardReply));
      // Replies carry error texts of a few hundred bytes at most, so forwardBatchMax of them should stay well below the limit.
      if (reply.length - prefixBytes > messageBytesMax) {
        call.fail({ code: status.RESOURCE_EXHAUSTED, details: `Sent message larger than max (${reply.length - prefixBytes} vs. ${messageBytesMax})` });
        return;
      }
      call.respond();
      stream.write(reply);
      maybeFinish();
    });
  };
  stream.on('data', (chunk: Buffer) => {
    if (call.failed) return;
    const problem = reader.push(chunk, messages);
    for (const message of messages) if (!call.failed) serveBatch(message);
    messages.length = 0;
    if (problem !== null) call.fail(problem);
  });
  call.onClientEnd(reader, () => {
    ended = true;
    maybeFinish();
  });
}

/** A decoded ForwardBatch, or why the message is not a valid one. */
type DecodedForwardBatch = { readonly batchId: Buffer; readonly valuesets: string[] } | { readonly problem: FramingProblem };

/**
 * Decodes a ForwardBatch. The batch id comes back as the bytes of its varint,
 * so that the reply repeats any id exactly, also one above 2^53.
 */
function decodeForwardBatch(message: Buffer): DecodedForwardBatch {
  let batchId = message.subarray(0, 0);
  const valuesets: string[] = [];
  let count = 0;
  const problem = scanFields(message, forwardBatchFields, (field, start, end) => {
    if (field === 1) {
      batchId = message.subarray(start, end);
    } else if (++count <= forwardBatchMax) {
      valuesets.push(message.toString('utf8', start, end));
    }
    return null;
  });
  if (problem !== null) return { problem: { code: status.INTERNAL, details: `invalid ForwardBatch: ${problem}` } };
  // Every build sends at most forwardBatchMax, and the reply to a longer batch could pass the message limit.
  if (count > forwardBatchMax) {
    return { problem: { code: status.RESOURCE_EXHAUSTED, details: `a ForwardBatch carries ${count} valuesets, the limit is ${forwardBatchMax}` } };
  }
  return { batchId, valuesets };
}

/** Appends one forwarded valueset. A synchronous throw (a storage error in the duplicate lookup) becomes a rejection. */
function appendForwarded(member: Member, valueset: string): Promise<AppendResult> {
  try {
    return member.append(valueset, true);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Converts the outcome of one forwarded append into its reply. */
function forwardReply(result: PromiseSettledResult<AppendResult>): AppendReplyWire {
  if (result.status === 'fulfilled') return { index: result.value.index, duplicate: result.value.duplicate, code: 0, error: '' };
  const err = toReplogError(result.reason);
  return { index: 0, duplicate: false, code: err.code, error: err.message };
}

/**
 * Encodes a ForwardReplies message as one gRPC message frame: field 1
 * (batch_id) from the bytes of its varint, when there are any, then one
 * AppendReply per reply in field 2. Other fields at their default are left
 * out, as proto3 does.
 */
export function encodeForwardReplies(batchId: Buffer, replies: readonly AppendReplyWire[]): Buffer {
  const errorTexts = replies.map((reply) => (reply.error === '' ? null : Buffer.from(reply.error, 'utf8')));
  let bytes = batchId.length > 0 ? 1 + batchId.length : 0;
  const replyBytes = replies.map((reply, i) => {
    const length = appendReplyBytes(reply, errorTexts[i]!);
    bytes += 1 + varintBytes(length) + length;
    return length;
  });
  const frame = Buffer.allocUnsafe(prefixBytes + bytes);
  frame[0] = 0;
  frame.writeUInt32BE(bytes, 1);
  let at = prefixBytes;
  if (batchId.length > 0) {
    frame[at++] = 0x08;
    at += batchId.copy(frame, at);
  }
  replies.forEach((reply, i) => {
    frame[at++] = 0x12;
    at = writeVarint(frame, at, replyBytes[i]!);
    at += writeAppendReply(reply, errorTexts[i]!, frame, at);
  });
  return frame;
}
