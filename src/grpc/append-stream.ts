// The AppendStream call served straight from Node's HTTP/2 stream. grpc-js's
// server spends several microseconds of its own on every message of a stream
// and on every reply (BENCHMARKS.md, section "2026-12-06 00:35-02:10 UTC"),
// and an AppendStream carries one message and one reply per append. This
// handler reads the messages with GrpcMessageReader and writes the replies
// that are ready together in one DATA write. grpc-js keeps the calls that
// routeCalls() does not take: compressed ones and those of another content type.
import type * as http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { AppendResult } from '../node/waiters';
import { decodeAppendRequest } from './append-request';
import { errors, ReplogError, toReplogError } from './errors';
import { GrpcMessageReader, prefixBytes } from './grpc-messages';
import type { ReceiveBudget } from './receive-budget';
import { ServedCall, type CallLabels } from './served-call';
import type { ShutdownListeners } from './server-stream';
import { appendReplyBytes, startAppend, writeAppendReply, writeReply, type AppendFunction, type AppendReplyWire, type CallHandler } from './unary-append';

/** The HTTP/2 :path of the AppendStream method. */
export const appendStreamPath = '/replog.v1.Ingest/AppendStream';

/** Requests received on one AppendStream without a reply yet, before the stream is paused. */
export const streamInflightMax = 8192;
/** UTF-16 code units of the valuesets of those requests, before the stream is paused. */
export const streamInflightCharsMax = 8 * 1024 * 1024;
/**
 * Unread replies of one AppendStream at which the stream fails with
 * RESOURCE_EXHAUSTED, about 10 MB at the 150 bytes per reply measured. A
 * pause would hang the stream behind HAProxy, because HAProxy then stops
 * reading the client's connection and its window updates.
 */
export const streamUnreadRepliesMax = 65_536;
/** Bytes of the longest frame of a successful reply: the gRPC prefix and an AppendReply. */
const okReplyFrameBytesMax = prefixBytes + 11;
/** Settled requests at the front of a stream's queue after which the queue drops them. */
const queueCompactAt = 4096;

const appendStreamLabels: CallLabels = { failed: 'append stream failed', remote: 'client' };

/**
 * Encodes an AppendStream reply by hand, as the unary handler does, because
 * the proto loader's encoder took 2-3% of a member's time under AppendStream
 * load. Fields at their default are left out, as proto3 does.
 */
export function encodeStreamReply(reply: AppendReplyWire): Buffer {
  const error = reply.error === '' ? null : Buffer.from(reply.error, 'utf8');
  const bytes = Buffer.allocUnsafe(appendReplyBytes(reply, error));
  writeAppendReply(reply, error, bytes, 0);
  return bytes;
}

/** One request of a stream in request order: its outcome once settled, and the valueset's length. */
interface Request {
  outcome: AppendResult | ReplogError | null;
  readonly chars: number;
}

/** Returns the route that serves AppendStream calls with `append`, ending them with UNAVAILABLE at shutdown. */
export function appendStreamRoute(
  append: AppendFunction,
  streams: ShutdownListeners,
  messageBytesMax: number,
  budget: ReceiveBudget,
  log: Logger,
): [string, CallHandler] {
  return [appendStreamPath, (stream, headers) => serveAppendStream(stream, headers, append, streams, messageBytesMax, budget, log)];
}

/**
 * Replies to each request in request order, and pauses the stream while too
 * many requests or bytes wait for their append. A client that leaves
 * streamUnreadRepliesMax replies unread gets RESOURCE_EXHAUSTED, and its
 * later requests are read and dropped. At shutdown the stream stops reading
 * requests and ends with UNAVAILABLE once the appends it read have their replies.
 */
function serveAppendStream(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  append: AppendFunction,
  streams: ShutdownListeners,
  messageBytesMax: number,
  budget: ReceiveBudget,
  log: Logger,
): void {
  const call = new ServedCall(stream, headers, log, appendStreamLabels);
  const reader = new GrpcMessageReader(messageBytesMax, budget);
  stream.once('close', () => reader.releaseReserved());
  const messages: Buffer[] = [];
  /** Requests from `head` on have no reply written yet, and those before it are done. */
  let queue: Request[] = [];
  let head = 0;
  let inflightChars = 0;
  /** Replies written whose DATA the client has not taken yet. */
  let unread = 0;
  let paused = false;
  let closing = false;
  let ended = false;
  let flushScheduled = false;

  const inflight = (): number => queue.length - head;
  // Pauses at either bound and resumes below half of both, so that a stream at a bound does not flip on every reply.
  const updateFlow = (): void => {
    if (closing || call.failed) return;
    if (!paused && (inflight() >= streamInflightMax || inflightChars >= streamInflightCharsMax)) {
      paused = true;
      stream.pause();
    } else if (paused && inflight() < streamInflightMax / 2 && inflightChars < streamInflightCharsMax / 2) {
      paused = false;
      stream.resume();
    }
  };
  /** Ends the call once every request read has its reply: UNAVAILABLE at shutdown, OK after the client's end. */
  const maybeEnd = (): void => {
    if (inflight() > 0 || !call.open) return;
    if (closing) {
      const error = errors.shuttingDown();
      call.fail({ code: error.code, details: error.message }, 'debug');
    } else if (ended) {
      forget();
      call.finish();
    }
  };
  const forget = streams.add(() => {
    closing = true;
    stream.pause();
    maybeEnd();
  });
  stream.once('close', () => forget());

  const failOverrun = (): void => {
    forget();
    const details = `${unread} replies wait for the client to read them, the limit is ${streamUnreadRepliesMax}; read the replies while sending requests`;
    call.fail({ code: status.RESOURCE_EXHAUSTED, details });
    // Reading on, and dropping, keeps a proxy in front from stalling the client's connection.
    if (paused) {
      paused = false;
      stream.resume();
    }
  };
  /** Writes the replies that are next in request order, together. */
  const flush = (): void => {
    flushScheduled = false;
    const first = head;
    while (head < queue.length && queue[head]!.outcome !== null) inflightChars -= queue[head++]!.chars;
    const replies = queue.slice(first, head);
    if (head === queue.length) {
      queue = [];
      head = 0;
    } else if (head >= queueCompactAt) {
      queue = queue.slice(head);
      head = 0;
    }
    updateFlow();
    if (replies.length > 0 && call.open) {
      call.respond();
      const count = replies.length;
      unread += count;
      stream.write(replyFrames(replies), () => {
        unread -= count;
      });
      if (unread >= streamUnreadRepliesMax) failOverrun();
    }
    maybeEnd();
  };
  const settle = (request: Request, outcome: AppendResult | ReplogError): void => {
    request.outcome = outcome;
    if (flushScheduled) return;
    flushScheduled = true;
    // After the promise jobs queued now, so that appends that settle together share one write.
    process.nextTick(flush);
  };
  const receive = (message: Buffer): void => {
    const decoded = decodeAppendRequest(message);
    const request: Request = { outcome: null, chars: decoded.invalid ? 0 : decoded.valueset.length };
    queue.push(request);
    inflightChars += request.chars;
    if (decoded.invalid) {
      settle(request, decoded.invalid);
      return;
    }
    startAppend(append, decoded.valueset).then(
      (result) => settle(request, result),
      (err: unknown) => settle(request, toReplogError(err)),
    );
  };

  stream.on('data', (chunk: Buffer) => {
    // A request read after shutdown began gets no reply, so the client resends it after the UNAVAILABLE status.
    if (call.failed || closing) return;
    const problem = reader.push(chunk, messages);
    for (const message of messages) receive(message);
    messages.length = 0;
    if (problem !== null) {
      // The rest of the request is dropped, so the message being read needs no budget.
      reader.releaseReserved();
      call.fail(problem, 'debug');
    } else {
      updateFlow();
    }
  });
  call.onClientEnd(reader, () => {
    ended = true;
    maybeEnd();
  });
}

/** Encodes the replies to `requests`, each as one gRPC message, into one buffer. */
function replyFrames(requests: readonly Request[]): Buffer {
  const frames = Buffer.allocUnsafe(requests.length * okReplyFrameBytesMax);
  // A failed append's reply carries its error text, so it is framed on its own, between parts of `frames`.
  const parts: Buffer[] = [];
  let start = 0;
  let at = 0;
  for (const request of requests) {
    const outcome = request.outcome!;
    if (outcome instanceof ReplogError) {
      if (at > start) parts.push(frames.subarray(start, at));
      parts.push(errorFrame(outcome));
      start = at;
      continue;
    }
    const length = writeReply(outcome, frames, at + prefixBytes);
    frames[at] = 0;
    frames.writeUInt32BE(length, at + 1);
    at += prefixBytes + length;
  }
  if (parts.length === 0) return frames.subarray(0, at);
  if (at > start) parts.push(frames.subarray(start, at));
  return Buffer.concat(parts);
}

/** Encodes the reply of a failed append as one gRPC message. */
function errorFrame(error: ReplogError): Buffer {
  const reply: AppendReplyWire = { index: 0, duplicate: false, code: error.code, error: error.message };
  const text = error.message === '' ? null : Buffer.from(error.message, 'utf8');
  const length = appendReplyBytes(reply, text);
  const frame = Buffer.allocUnsafe(prefixBytes + length);
  frame[0] = 0;
  frame.writeUInt32BE(length, 1);
  writeAppendReply(reply, text, frame, prefixBytes);
  return frame;
}
