// The Raft and Forward calls of the Peer service, served straight from Node's
// HTTP/2 streams. They carry every Raft message and every forwarded append
// between members. Served by grpc-js, they spent 5 to 7% of the members' CPU
// samples at 100 and 1,000 appends a second in grpc-js's own code (BENCHMARKS.md,
// section "2026-12-06 03:20-05:50 UTC"). The
// wire format stays gRPC's, so members of older builds, whose peer clients
// are grpc-js, talk to these handlers unchanged.
import type * as http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Member } from '../node/member';
import type { AppendResult } from '../node/waiters';
import { toReplogError } from './errors';
import { decodeMessages } from './peer-codec';
import { scanFields, varintBytes, varintValue, wireLengthDelimited, wireVarint, writeVarint } from './protobuf-fields';
import { GrpcMessageReader, type FramingProblem } from './grpc-messages';
import { okHeaders, okTrailers, prefixBytes, sendStatusOnly, writeReply, type CallHandler } from './unary-append';

/** The HTTP/2 :path of the Raft method. */
export const raftPath = '/replog.v1.Peer/Raft';
/** The HTTP/2 :path of the Forward method. */
export const forwardPath = '/replog.v1.Peer/Forward';

/**
 * Time between two warnings about invalid frames on one Raft stream. Each
 * warning's `dropped` field counts the frames since the one before.
 */
const invalidFrameWarnIntervalMs = 10_000;
/** The PeerAck reply of a Raft call: an empty message behind its 5-byte prefix. */
const emptyMessage = Buffer.alloc(prefixBytes);

const peerFrameFields = { 1: { name: 'payload', wireType: wireLengthDelimited } };
const forwardBatchFields = {
  1: { name: 'batch_id', wireType: wireVarint },
  2: { name: 'valuesets', wireType: wireLengthDelimited },
};

/** One reply of a ForwardReplies message, as AppendReply encodes it. */
interface ForwardReply {
  readonly index: number;
  readonly duplicate: boolean;
  readonly code: number;
  readonly error: string;
}

/** Returns the routes of the Raft and Forward calls, for routeCalls(). */
export function peerRoutes(member: Member, messageBytesMax: number, log: Logger): [string, CallHandler][] {
  return [
    [raftPath, (stream) => serveRaft(stream, member, messageBytesMax, log)],
    [forwardPath, (stream) => serveForward(stream, member, messageBytesMax, log)],
  ];
}

/** Returns the peer's address for log lines. */
function peerAddress(stream: http2.ServerHttp2Stream): string {
  const socket = stream.session?.socket;
  return socket ? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` : 'unknown';
}

/**
 * Hands each PeerFrame of a Raft call to the member. A frame that does not
 * decode is dropped, as Raft resends what is lost. A call whose framing is
 * broken ends with an error status, and the peer opens a new one.
 */
function serveRaft(stream: http2.ServerHttp2Stream, member: Member, messageBytesMax: number, log: Logger): void {
  // An error on the stream (a reset by the peer) is followed by 'close', and nothing waits for it.
  stream.on('error', () => undefined);
  const reader = new GrpcMessageReader(messageBytesMax);
  const messages: Buffer[] = [];
  let failed = false;
  // A peer whose frames fail keeps sending such frames, several a second.
  let droppedSinceWarning = 0;
  let warnedAtMs = -Infinity;
  const receive = (message: Buffer): void => {
    let payload: Buffer = emptyMessage.subarray(0, 0);
    try {
      const problem = scanFields(message, peerFrameFields, (_field, start, end) => {
        payload = message.subarray(start, end);
        return null;
      });
      if (problem !== null) throw new Error(`invalid PeerFrame: ${problem}`);
      member.receive(decodeMessages(payload));
    } catch (err) {
      droppedSinceWarning += 1;
      const now = performance.now();
      if (now - warnedAtMs < invalidFrameWarnIntervalMs) return;
      log.warn({ err: (err as Error).message, peer: peerAddress(stream), dropped: droppedSinceWarning }, 'dropped an invalid peer frame');
      warnedAtMs = now;
      droppedSinceWarning = 0;
    }
  };
  stream.on('data', (chunk: Buffer) => {
    if (failed) return;
    const problem = reader.push(chunk, messages);
    for (const message of messages) receive(message);
    messages.length = 0;
    if (problem !== null) {
      failed = true;
      failCall(stream, problem, log);
    }
  });
  stream.on('end', () => {
    if (failed || stream.destroyed) return;
    const problem = reader.endProblem();
    if (problem !== null) {
      failCall(stream, problem, log);
      return;
    }
    stream.respond(okHeaders, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(okTrailers));
    stream.end(emptyMessage);
  });
}

/**
 * Appends the valuesets of each ForwardBatch as forwarded appends and writes
 * one ForwardReplies per batch once all of its appends have settled. Replies
 * may come in another order than their batches: the peer matches them by
 * batch id. The call ends once the peer has ended its side and every batch
 * has its reply.
 */
function serveForward(stream: http2.ServerHttp2Stream, member: Member, messageBytesMax: number, log: Logger): void {
  stream.on('error', () => undefined);
  const reader = new GrpcMessageReader(messageBytesMax);
  const messages: Buffer[] = [];
  let responded = false;
  let trailers: Record<string, string> = okTrailers;
  let failed = false;
  let ended = false;
  let pending = 0;
  const open = (): boolean => !failed && !stream.destroyed && !stream.closed;
  const respond = (): void => {
    if (responded) return;
    responded = true;
    stream.respond(okHeaders, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(trailers));
  };
  const fail = (problem: FramingProblem): void => {
    failed = true;
    if (!responded) {
      failCall(stream, problem, log);
      return;
    }
    log.warn({ code: problem.code, err: problem.details, peer: peerAddress(stream) }, 'peer call failed');
    trailers = { 'grpc-status': String(problem.code), 'grpc-message': problem.details };
    if (!stream.destroyed && !stream.closed) stream.end();
  };
  const maybeEnd = (): void => {
    if (!ended || pending > 0 || !open()) return;
    respond();
    stream.end();
  };
  const serveBatch = (message: Buffer): void => {
    let batchId = 0;
    const valuesets: string[] = [];
    const problem = scanFields(message, forwardBatchFields, (field, start, end) => {
      if (field === 1) batchId = varintValue(message, start, end);
      else valuesets.push(message.toString('utf8', start, end));
      return null;
    });
    if (problem !== null) {
      fail({ code: status.INTERNAL, details: `invalid ForwardBatch: ${problem}` });
      return;
    }
    pending++;
    void Promise.allSettled(valuesets.map((valueset) => appendForwarded(member, valueset))).then((results) => {
      pending--;
      if (!open()) return;
      respond();
      stream.write(encodeForwardReplies(batchId, results.map(forwardReply)));
      maybeEnd();
    });
  };
  stream.on('data', (chunk: Buffer) => {
    if (failed) return;
    const problem = reader.push(chunk, messages);
    for (const message of messages) if (!failed) serveBatch(message);
    messages.length = 0;
    if (problem !== null && !failed) fail(problem);
  });
  stream.on('end', () => {
    if (failed) return;
    const problem = reader.endProblem();
    if (problem !== null) {
      fail(problem);
      return;
    }
    ended = true;
    maybeEnd();
  });
}

/** Appends one forwarded valueset. A synchronous throw (a storage error in the duplicate lookup) becomes a rejection. */
function appendForwarded(member: Member, valueset: string): Promise<AppendResult> {
  try {
    return member.append(valueset, true);
  } catch (err) {
    return Promise.reject(err);
  }
}

function forwardReply(result: PromiseSettledResult<AppendResult>): ForwardReply {
  if (result.status === 'fulfilled') return { index: result.value.index, duplicate: result.value.duplicate, code: 0, error: '' };
  const err = toReplogError(result.reason);
  return { index: 0, duplicate: false, code: err.code, error: err.message };
}

/** Ends a call that has sent nothing yet with `problem` as its status, and logs one line. */
function failCall(stream: http2.ServerHttp2Stream, problem: FramingProblem, log: Logger): void {
  log.warn({ code: problem.code, err: problem.details, peer: peerAddress(stream) }, 'peer call failed');
  if (!stream.destroyed && !stream.closed && !stream.headersSent) sendStatusOnly(stream, problem.code, problem.details);
}

/**
 * Encodes a ForwardReplies message as one gRPC message frame: field 1
 * (batch_id), then one AppendReply per reply in field 2. Fields at their
 * default are left out, as proto3 does.
 */
export function encodeForwardReplies(batchId: number, replies: readonly ForwardReply[]): Buffer {
  const errorTexts = replies.map((reply) => (reply.error === '' ? null : Buffer.from(reply.error, 'utf8')));
  let bytes = batchId > 0 ? 1 + varintBytes(batchId) : 0;
  const replyBytes = replies.map((reply, i) => {
    const error = errorTexts[i];
    const length =
      (reply.index > 0 ? 1 + varintBytes(reply.index) : 0) +
      (reply.duplicate ? 2 : 0) +
      (reply.code > 0 ? 1 + varintBytes(reply.code) : 0) +
      (error ? 1 + varintBytes(error.length) + error.length : 0);
    bytes += 1 + varintBytes(length) + length;
    return length;
  });
  const frame = Buffer.allocUnsafe(prefixBytes + bytes);
  frame[0] = 0;
  frame.writeUInt32BE(bytes, 1);
  let at = prefixBytes;
  if (batchId > 0) {
    frame[at++] = 0x08;
    at = writeVarint(frame, at, batchId);
  }
  replies.forEach((reply, i) => {
    frame[at++] = 0x12;
    at = writeVarint(frame, at, replyBytes[i]!);
    at += writeReply(reply, frame, at);
    if (reply.code > 0) {
      frame[at++] = 0x18;
      at = writeVarint(frame, at, reply.code);
    }
    const error = errorTexts[i];
    if (error) {
      frame[at++] = 0x22;
      at = writeVarint(frame, at, error.length);
      at += error.copy(frame, at);
    }
  });
  return frame;
}
