// The unary Append call served straight from Node's HTTP/2 stream, without
// grpc-js's per-call machinery. A unary call through grpc-js costs the member
// that receives it about 75 µs of CPU before replog does anything, and about
// 47 µs this way (BENCHMARKS.md, section "2026-12-05 22:15-23:00 UTC"). Append is the hot
// path of every client that sends one message per call, so it gets its own
// handler. grpc-js keeps every other method, and every Append call this file
// does not fully understand: a compressed one, or one whose content type is
// not gRPC's, is passed to grpc-js before a byte of it is read.
import type * as http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { AppendResult } from '../node/waiters';
import { decodeAppendRequest } from './append-request';
import { prefixBytes } from './grpc-messages';
import { varintBytes, writeVarint } from './protobuf-fields';
import { retryPushbackTrailer, toReplogError } from './errors';
import type { ReceiveBudget } from './receive-budget';

/** The HTTP/2 :path of the unary Append method. */
export const appendPath = '/replog.v1.Ingest/Append';

/** Maximum delay of a Node.js timer, about 24.8 days. Node fires a timer set for longer after 1 ms. */
const timerDelayMaxMs = 2 ** 31 - 1;
/** Bytes of the longest AppendReply: a tag and an 8-byte varint of an index up to 2^53 - 1, then a tag and a bool. */
const replyBytesMax = 1 + 8 + 2;
/** Milliseconds per unit of the grpc-timeout header. */
const timeoutUnitMs: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };
/**
 * Response headers and trailers of a successful call, only the fields that gRPC
 * requires, because every extra field is work for Node's header code on each
 * call. Node copies them before use, so one frozen object serves every call.
 */
export const okHeaders = Object.freeze({ ':status': 200, 'content-type': 'application/grpc+proto' });
export const okTrailers = Object.freeze({ 'grpc-status': '0' });

/** Function that appends one valueset. Its promise rejects with a ReplogError or any other error. */
export type AppendFunction = (valueset: string) => Promise<AppendResult>;

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) => void;

/** Function that serves one call of a route: a gRPC call with plain, uncompressed messages. */
export type CallHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/**
 * Makes `server` hand the calls whose :path is a key of `routes` to that
 * route's handler, before its other 'stream' listeners run. Call it on a
 * server that grpc-js has not yet set up: the listener grpc-js adds later is
 * wrapped, so it never receives a call taken here. A call this file does not
 * fully understand (compressed, or with a content type other than gRPC's)
 * goes to grpc-js before a byte of it is read.
 * NOTE: this relies on grpc-js 1.14 adding its listener with server.on('stream').
 * A version that adds it another way would serve every call itself, slower, and
 * the framing cases of test/e2e/unary-append-wire.test.ts and
 * test/e2e/peer-calls-wire.test.ts, whose messages are replog's own, would fail.
 */
export function routeCalls(server: http2.Http2Server, routes: ReadonlyMap<string, CallHandler>): void {
  const on = server.on.bind(server) as (event: string | symbol, listener: (...args: never[]) => void) => http2.Http2Server;
  const wrapped = (event: string | symbol, listener: (...args: never[]) => void): http2.Http2Server => {
    if (event !== 'stream') return on(event, listener);
    const grpcListener = listener as unknown as StreamListener;
    return on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) => {
      const handler = routes.get(headers[':path'] ?? '');
      if (handler !== undefined && takesCall(headers)) handler(stream, headers);
      else grpcListener(stream, headers, ...rest);
    });
  };
  server.on = wrapped as typeof server.on;
  server.addListener = wrapped as typeof server.addListener;
}

/** Returns the route that serves unary Append calls with `append`. */
export function appendRoute(append: AppendFunction, messageBytesMax: number, budget: ReceiveBudget, log: Logger): [string, CallHandler] {
  return [appendPath, (stream, headers) => serveAppend(stream, headers, append, messageBytesMax, budget, log)];
}

/** Returns whether the call is a plain gRPC call: POST, gRPC content, no compression. */
function takesCall(headers: http2.IncomingHttpHeaders): boolean {
  if (headers[':method'] !== 'POST') return false;
  const contentType = headers['content-type'];
  if (contentType !== 'application/grpc' && contentType !== 'application/grpc+proto') return false;
  const encoding = headers['grpc-encoding'];
  return encoding === undefined || encoding === 'identity';
}

/** Reads one request message, appends it and replies, or replies with an error status. */
function serveAppend(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  append: AppendFunction,
  messageBytesMax: number,
  budget: ReceiveBudget,
  log: Logger,
): void {
  // An error on the stream (a reset by the client) is followed by 'close', which is all that matters here.
  stream.on('error', () => undefined);
  let answered = false;
  let deadline: NodeJS.Timeout | undefined;
  /** Bytes of the budget reserved for the request until it is whole or the call ends. */
  let reserved = 0;
  const releaseReserved = (): void => {
    budget.release(reserved);
    reserved = 0;
  };
  const finish = (): boolean => {
    if (answered) return false;
    answered = true;
    releaseReserved();
    if (deadline !== undefined) clearTimeout(deadline);
    return !stream.destroyed && !stream.closed;
  };
  const fail = (code: status, details: string, retryPushbackMs: number | null = null): void => {
    // Failures are part of normal operation (overload, elections), so they log at debug, as one line each.
    if (log.isLevelEnabled('debug')) log.debug({ code, err: details, client: stream.session?.socket?.remoteAddress }, 'append call failed');
    if (finish()) sendStatusOnly(stream, code, details, retryPushbackMs);
  };
  stream.once('close', () => finish());

  // After a failure the rest of the request is still read, and dropped, so
  // that the client's flow-control window does not fill and stall its stream.
  const chunks: Buffer[] = [];
  let received = 0;
  let declared = -1;
  stream.on('data', (chunk: Buffer) => {
    if (answered) return;
    const before = received;
    chunks.push(chunk);
    received += chunk.length;
    if (before < prefixBytes && received >= prefixBytes) {
      declared = (chunks.length === 1 ? chunk : Buffer.concat(chunks)).readUInt32BE(1);
      if (declared > messageBytesMax) {
        chunks.length = 0;
        fail(status.RESOURCE_EXHAUSTED, `Received message larger than max (${declared} vs. ${messageBytesMax})`);
        return;
      }
      // A request that came in one chunk takes that memory anyway, so only a partial one reserves.
      if (received < prefixBytes + declared) {
        const problem = budget.reserve(declared);
        if (problem !== null) {
          chunks.length = 0;
          fail(problem.code, problem.details, problem.retryPushbackMs ?? null);
          return;
        }
        reserved = declared;
      }
    }
    // A byte past the one message starts a second one: fail now rather than buffer a body without end.
    if (declared >= 0 && received > prefixBytes + declared) {
      chunks.length = 0;
      fail(status.UNIMPLEMENTED, `Received a second request message for unary method ${appendPath}`);
    }
  });
  stream.on('end', () => {
    if (answered) return;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks.length = 0;
    releaseReserved();
    const problem = framingProblem(body);
    if (problem !== null) {
      fail(problem.code, problem.details);
      return;
    }
    const request = decodeAppendRequest(body.subarray(prefixBytes));
    if (request.invalid) {
      fail(request.invalid.code, request.invalid.message);
      return;
    }
    startAppend(append, request.valueset).then(
      (result) => {
        if (finish()) sendReply(stream, result);
      },
      (err: unknown) => {
        const error = toReplogError(err);
        fail(error.code, error.message, error.retryPushbackMs);
      },
    );
  });

  deadline = startDeadline(headers, fail);
}

/**
 * Calls `fail` with DEADLINE_EXCEEDED once the call's grpc-timeout has passed,
 * or at once with INTERNAL when the header is malformed. Returns the timer to
 * clear when the call ends first, if one was set.
 */
export function startDeadline(headers: http2.IncomingHttpHeaders, fail: (code: status, details: string) => void): NodeJS.Timeout | undefined {
  const timeout = headers['grpc-timeout'];
  if (timeout === undefined) return undefined;
  const ms = timeoutMs(timeout);
  if (ms === null) {
    fail(status.INTERNAL, `invalid grpc-timeout header "${timeout}": expected 1 to 8 digits and a unit of H, M, S, m, u or n`);
    return undefined;
  }
  // A longer deadline gets no timer: setTimeout would fire at once instead.
  if (ms > timerDelayMaxMs) return undefined;
  return setTimeout(() => fail(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), ms);
}

/**
 * Returns why `body` is not one whole uncompressed gRPC message, or null when
 * it is. Bytes past the message never get here: the 'data' listener fails the call at the first.
 */
function framingProblem(body: Buffer): { code: status; details: string } | null {
  if (body.length === 0) return { code: status.UNIMPLEMENTED, details: `Received no request message for unary method ${appendPath}` };
  if (body.length < prefixBytes) {
    return { code: status.INTERNAL, details: `the request ended inside the ${prefixBytes}-byte message prefix` };
  }
  const length = body.readUInt32BE(1);
  if (body.length < prefixBytes + length) {
    return { code: status.INTERNAL, details: `the request message declares ${length} bytes, but the call ended after ${body.length - prefixBytes}` };
  }
  if (body[0] !== 0) {
    return { code: status.INTERNAL, details: 'the request message is marked compressed, but the call declares no compression (grpc-encoding missing or identity)' };
  }
  return null;
}

/** Converts a grpc-timeout header to milliseconds, or returns null when it is malformed. */
function timeoutMs(header: string | string[]): number | null {
  const match = /^(\d{1,8})([HMSmun])$/.exec(String(header));
  if (match === null) return null;
  return Number(match[1]) * timeoutUnitMs[match[2]!]!;
}

/** Sends the AppendReply and an OK status. */
function sendReply(stream: http2.ServerHttp2Stream, result: AppendResult): void {
  const frame = Buffer.allocUnsafe(prefixBytes + replyBytesMax);
  const length = writeReply(result, frame, prefixBytes);
  frame[0] = 0;
  frame.writeUInt32BE(length, 1);
  stream.respond(okHeaders, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers(okTrailers));
  stream.end(frame.subarray(0, prefixBytes + length));
}

/**
 * Ends the call with a status and no message, in one HEADERS frame ("trailers
 * only"), with the pause before a retry that the status requests, if any.
 */
export function sendStatusOnly(stream: http2.ServerHttp2Stream, code: status, details: string, retryPushbackMs: number | null = null): void {
  stream.respond(
    { ':status': 200, 'content-type': 'application/grpc+proto', ...statusFields(code, details, retryPushbackMs) },
    { endStream: true },
  );
}

/** Returns the status fields of a call's trailers, with the pause before a retry that the status requests, if any. */
export function statusFields(code: status, details: string, retryPushbackMs: number | null): Record<string, string> {
  const fields: Record<string, string> = { 'grpc-status': String(code), 'grpc-message': percentEncode(details) };
  if (retryPushbackMs !== null) fields[retryPushbackTrailer] = String(retryPushbackMs);
  return fields;
}

/**
 * Calls `append` with `valueset`. A synchronous throw (a storage error in the
 * duplicate lookup) becomes a rejection, so it cannot escape an event handler.
 */
export function startAppend(append: AppendFunction, valueset: string): Promise<AppendResult> {
  try {
    return append(valueset);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Encodes an AppendReply into a Buffer of its own. */
export function encodeReply(result: AppendResult): Buffer {
  const bytes = Buffer.allocUnsafe(replyBytesMax);
  return bytes.subarray(0, writeReply(result, bytes, 0));
}

/**
 * Writes an AppendReply into `target` at `offset` and returns its length:
 * field 1 (index) as a varint and field 2 (duplicate) when true. Fields at
 * their default are left out, as proto3 does. It is encoded by hand, because
 * the proto loader's encoder builds a message object per reply.
 */
export function writeReply(result: AppendResult, target: Buffer, offset: number): number {
  let at = offset;
  if (result.index > 0) {
    target[at++] = 0x08;
    at = writeVarint(target, at, result.index);
  }
  if (result.duplicate) {
    target[at++] = 0x10;
    target[at++] = 1;
  }
  return at - offset;
}

/** An AppendReply with every field: the append's result, or a gRPC status code and why. */
export interface AppendReplyWire {
  readonly index: number;
  readonly duplicate: boolean;
  readonly code: number;
  readonly error: string;
}

/** Returns the encoded length of `reply`, whose error text is `error` in UTF-8, or null when empty. */
export function appendReplyBytes(reply: AppendReplyWire, error: Buffer | null): number {
  return (
    (reply.index > 0 ? 1 + varintBytes(reply.index) : 0) +
    (reply.duplicate ? 2 : 0) +
    (reply.code > 0 ? 1 + varintBytes(reply.code) : 0) +
    (error ? 1 + varintBytes(error.length) + error.length : 0)
  );
}

/**
 * Writes `reply` into `target` at `offset` and returns its length: the fields
 * of writeReply, then field 3 (code) and field 4 (error, `error` in UTF-8)
 * when set. `target` needs appendReplyBytes(reply, error) bytes from `offset`.
 */
export function writeAppendReply(reply: AppendReplyWire, error: Buffer | null, target: Buffer, offset: number): number {
  let at = offset + writeReply(reply, target, offset);
  if (reply.code > 0) {
    target[at++] = 0x18;
    at = writeVarint(target, at, reply.code);
  }
  if (error) {
    target[at++] = 0x22;
    at = writeVarint(target, at, error.length);
    at += error.copy(target, at);
  }
  return at - offset;
}

/**
 * Percent-encodes a grpc-message value as the gRPC HTTP/2 protocol specifies:
 * every byte of the UTF-8 text outside printable ASCII, and '%' itself.
 */
export function percentEncode(text: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(text)) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
