import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Member } from '../node/member';
import type { StoredMessage } from '../storage/types';
import { decodeAppendRequest, type AppendRequestWire } from './append-request';
import { encodeStreamReply, streamInflightCharsMax, streamInflightMax, streamUnreadRepliesMax } from './append-stream';
import { errors, ReplogError, retryPushbackTrailer, toReplogError } from './errors';
import { decodeReadRequest, type ReadRequestWire } from './read-request';
import { failStream, ShutdownListeners, waitForDrain } from './server-stream';
interface MessageWire {
  readonly index: number;
  readonly valueset: string;
  readonly receivedAtMs: number;
}

/** Rows read from SQLite per step of a Read stream. */
const readPageSize = 1000;

/**
 * Returns the Ingest service definition with the strict request decoders of
 * append-request.ts and read-request.ts in place of the proto loader's, and
 * the hand-written reply encoder of AppendStream.
 */
export function ingestServiceDefinition(loaded: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...loaded };
  const decoders: [string, (bytes: Buffer) => unknown][] = [
    ['Append', decodeAppendRequest],
    ['AppendStream', decodeAppendRequest],
    ['Read', decodeReadRequest],
  ];
  for (const [name, decode] of decoders) {
    const method = definition[name];
    if (!method) throw new Error(`the Ingest service has no ${name} method; check proto/replog.proto`);
    definition[name] = { ...method, requestDeserialize: decode };
  }
  definition['AppendStream'] = { ...definition['AppendStream']!, responseSerialize: encodeStreamReply as (reply: unknown) => Buffer };
  return definition as grpc.ServiceDefinition;
}

/**
 * Handlers of the public Ingest service (contract: proto/replog.proto). When
 * `shutdown` aborts, open streams end with UNAVAILABLE, so that clients retry
 * on another member: an AppendStream stops reading requests and ends once the
 * appends it read have their replies, and a Read stream ends at once.
 */
export function ingestServiceHandlers(
  member: Member,
  log: Logger,
  shutdown: AbortSignal = new AbortController().signal,
): grpc.UntypedServiceImplementation {
  const streams = new ShutdownListeners(shutdown);
  return {
    // Most unary Append calls never get here: unary-append.ts serves them, and
    // leaves grpc-js only the compressed ones and those with an unusual content type.
    Append: (call: grpc.ServerUnaryCall<AppendRequestWire, object>, callback: grpc.sendUnaryData<object>) => {
      const invalid = call.request.invalid;
      if (invalid) {
        callback({ code: invalid.code, details: invalid.message });
        return;
      }
      member.append(call.request.valueset).then(
        (result) => callback(null, { index: result.index, duplicate: result.duplicate }),
        (err: unknown) => callback(serviceErrorOf(toReplogError(err))),
      );
    },
    AppendStream: (call: grpc.ServerDuplexStream<AppendRequestWire, object>) => handleAppendStream(member, log, call, streams),
    Read: (call: grpc.ServerWritableStream<ReadRequestWire, MessageWire>) => {
      handleRead(member, call, streams).catch((err: unknown) => {
        const error = toReplogError(err);
        // Bad requests and shutdown are expected; only an internal error is worth a warning.
        const level = error.code === grpc.status.INTERNAL ? 'warn' : 'debug';
        log[level]({ err: error.message, code: error.code }, 'read stream failed');
        if (!call.cancelled) failStream(call, error.code, error.message);
      });
    },
  };
}

/**
 * Replies to each request in request order, and pauses the stream while too
 * many requests or bytes wait for their append. A client that leaves
 * streamUnreadRepliesMax replies unread gets RESOURCE_EXHAUSTED, and its
 * later requests are read and dropped.
 */
function handleAppendStream(
  member: Member,
  log: Logger,
  call: grpc.ServerDuplexStream<AppendRequestWire, object>,
  streams: ShutdownListeners,
): void {
  let tail: Promise<void> = Promise.resolve();
  let inflight = 0;
  let inflightChars = 0;
  /** Replies handed to grpc-js whose write has not completed, because the client has not read them. */
  let unread = 0;
  let paused = false;
  let closing = false;
  /** Set once the stream failed because its client fell too far behind. */
  let overrun = false;
  const forget = streams.add(() => {
    closing = true;
    call.pause();
    void tail.then(() => {
      const error = errors.shuttingDown();
      if (!call.cancelled && !overrun) failStream(call, error.code, error.message);
    });
  });
  // Pauses at either bound and resumes below half of both, so that a stream at a bound does not flip on every reply.
  const updateFlow = (): void => {
    if (closing || overrun) return;
    if (!paused && (inflight >= streamInflightMax || inflightChars >= streamInflightCharsMax)) {
      paused = true;
      call.pause();
    } else if (paused && inflight < streamInflightMax / 2 && inflightChars < streamInflightCharsMax / 2) {
      paused = false;
      call.resume();
    }
  };
  const failOverrun = (): void => {
    overrun = true;
    forget();
    log.warn({ client: call.getPeer(), unread }, 'AppendStream client left too many replies unread; failing its stream');
    failStream(
      call,
      grpc.status.RESOURCE_EXHAUSTED,
      `${unread} replies wait for the client to read them, the limit is ${streamUnreadRepliesMax}; read the replies while sending requests`,
    );
    // Reading on, and dropping, keeps a proxy in front from stalling the client's connection.
    if (paused) {
      paused = false;
      call.resume();
    }
  };
  call.on('cancelled', forget);
  call.on('data', (request: AppendRequestWire) => {
    // A request read after shutdown began gets no reply; the client resends it after the UNAVAILABLE status.
    if (closing || overrun) return;
    const chars = request.invalid ? 0 : request.valueset.length;
    inflight++;
    inflightChars += chars;
    const appended = request.invalid ? Promise.reject(request.invalid) : member.append(request.valueset);
    const outcome = appended.then(
      (result) => ({ index: result.index, duplicate: result.duplicate, code: 0, error: '' }),
      (err: unknown) => {
        const error = toReplogError(err);
        return { index: 0, duplicate: false, code: error.code, error: error.message };
      },
    );
    tail = tail.then(async () => {
      const reply = await outcome;
      inflight--;
      inflightChars -= chars;
      updateFlow();
      if (call.cancelled || overrun) return;
      unread++;
      call.write(reply, () => {
        unread--;
      });
      if (unread >= streamUnreadRepliesMax) failOverrun();
    });
    updateFlow();
  });
  call.on('end', () => {
    void tail.then(() => {
      if (closing || overrun) return;
      forget();
      call.end();
    });
  });
  call.on('error', () => undefined);
}

async function handleRead(
  member: Member,
  call: grpc.ServerWritableStream<ReadRequestWire, MessageWire>,
  streams: ShutdownListeners,
): Promise<void> {
  const { fromIndex, limit, follow, invalid } = call.request;
  if (invalid) throw invalid;
  checkReadRequest(fromIndex, limit);
  let next = Math.max(1, fromIndex);
  let remaining = limit === 0 ? Infinity : limit;
  while (!call.cancelled && remaining > 0) {
    if (streams.signal.aborted) throw errors.shuttingDown();
    const requested = Math.min(readPageSize, remaining);
    const seenApplied = member.applied;
    const page = member.read(next, requested);
    for (const message of page) {
      if (!call.write(toWire(message))) await waitForDrain(call);
    }
    remaining -= page.length;
    if (page.length > 0) next = page[page.length - 1]!.index + 1;
    if (page.length === requested) continue;
    if (!follow || !(await waitForApply(member, call, seenApplied, streams))) break;
  }
  if (!call.cancelled) call.end();
}

/**
 * Rejects a from_index or limit above 2^53 - 1. The proto loader turns uint64
 * fields into JavaScript numbers, which cannot hold larger values exactly,
 * and no log index gets that far. The message does not quote the value: the
 * number received is already rounded and may differ from the one sent.
 */
function checkReadRequest(fromIndex: number, limit: number): void {
  const max = Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(fromIndex)) {
    throw new ReplogError(grpc.status.INVALID_ARGUMENT, `invalid from_index: above the maximum of ${max} (2^53 - 1)`);
  }
  if (!Number.isSafeInteger(limit)) {
    throw new ReplogError(grpc.status.INVALID_ARGUMENT, `invalid limit: above the maximum of ${max} (2^53 - 1); use 0 for no limit`);
  }
}

/**
 * Resolves true once the member applies past `appliedIndex`, false if the call
 * ends first, and rejects with shuttingDown when `shutdown` aborts first.
 */
function waitForApply(
  member: Member,
  call: grpc.ServerWritableStream<ReadRequestWire, MessageWire>,
  appliedIndex: number,
  streams: ShutdownListeners,
): Promise<boolean> {
  if (member.applied > appliedIndex) return Promise.resolve(true);
  if (streams.signal.aborted) return Promise.reject(errors.shuttingDown());
  return new Promise((resolve, reject) => {
    const onApplied = (): void => finish(true);
    const onCancelled = (): void => finish(false);
    const finish = (applied: boolean): void => {
      member.off('applied', onApplied);
      member.off('stopped', onCancelled);
      call.off('cancelled', onCancelled);
      forget();
      resolve(applied);
    };
    // After finish() has resolved, reject() does nothing, so the order here does not matter.
    const forget = streams.add(() => {
      reject(errors.shuttingDown());
      finish(false);
    });
    member.on('applied', onApplied);
    member.on('stopped', onCancelled);
    call.on('cancelled', onCancelled);
  });
}

function toWire(message: StoredMessage): MessageWire {
  return { index: message.index, valueset: message.valueset, receivedAtMs: message.receivedAtMs };
}

/** Returns the status that grpc-js sends for `error`, with its request for a pause as a trailer. */
function serviceErrorOf(error: ReplogError): Partial<grpc.StatusObject> {
  if (error.retryPushbackMs === null) return { code: error.code, details: error.message };
  const metadata = new grpc.Metadata();
  metadata.set(retryPushbackTrailer, String(error.retryPushbackMs));
  return { code: error.code, details: error.message, metadata };
}
