import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Member } from '../node/member';
import type { StoredMessage } from '../storage/types';
import { ReplogError, toReplogError } from './errors';
import { waitForDrain } from './server-stream';

interface AppendRequestWire {
  readonly valueset: string;
}
interface ReadRequestWire {
  readonly fromIndex: number;
  readonly limit: number;
  readonly follow: boolean;
}
interface MessageWire {
  readonly index: number;
  readonly valueset: string;
  readonly receivedAtMs: number;
}

/** Requests received on one AppendStream without a reply yet, before the stream is paused. */
const streamInflightMax = 8192;
/** Rows read from SQLite per step of a Read stream. */
const readPageSize = 1000;

/** Handlers of the public Ingest service (contract: proto/replog.proto). */
export function ingestServiceHandlers(member: Member, log: Logger): grpc.UntypedServiceImplementation {
  return {
    Append: (call: grpc.ServerUnaryCall<AppendRequestWire, object>, callback: grpc.sendUnaryData<object>) => {
      member.append(call.request.valueset).then(
        (result) => callback(null, { index: result.index, duplicate: result.duplicate }),
        (err: unknown) => {
          const error = toReplogError(err);
          callback({ code: error.code, details: error.message });
        },
      );
    },
    AppendStream: (call: grpc.ServerDuplexStream<AppendRequestWire, object>) => handleAppendStream(member, call),
    Read: (call: grpc.ServerWritableStream<ReadRequestWire, MessageWire>) => {
      handleRead(member, call).catch((err: unknown) => {
        const error = toReplogError(err);
        log.warn({ err: error.message, code: error.code }, 'read stream failed');
        // An 'error' event ends the call with this status; destroy() would
        // close the stream and leave the client without one.
        if (!call.cancelled) call.emit('error', { code: error.code, details: error.message });
      });
    },
  };
}

/** Replies to each request in request order, pausing the stream while too many are open. */
function handleAppendStream(member: Member, call: grpc.ServerDuplexStream<AppendRequestWire, object>): void {
  let tail: Promise<void> = Promise.resolve();
  let inflight = 0;
  let paused = false;
  call.on('data', (request: AppendRequestWire) => {
    inflight++;
    const outcome = member.append(request.valueset).then(
      (result) => ({ index: result.index, duplicate: result.duplicate, code: 0, error: '' }),
      (err: unknown) => {
        const error = toReplogError(err);
        return { index: 0, duplicate: false, code: error.code, error: error.message };
      },
    );
    tail = tail.then(async () => {
      const reply = await outcome;
      inflight--;
      if (!call.cancelled) call.write(reply);
      if (paused && inflight < streamInflightMax / 2) {
        paused = false;
        call.resume();
      }
    });
    if (inflight >= streamInflightMax && !paused) {
      paused = true;
      call.pause();
    }
  });
  call.on('end', () => {
    void tail.then(() => call.end());
  });
  call.on('error', () => undefined);
}

async function handleRead(member: Member, call: grpc.ServerWritableStream<ReadRequestWire, MessageWire>): Promise<void> {
  const { fromIndex, limit, follow } = call.request;
  checkReadRequest(fromIndex, limit);
  let next = Math.max(1, fromIndex);
  let remaining = limit === 0 ? Infinity : limit;
  while (!call.cancelled && remaining > 0) {
    const requested = Math.min(readPageSize, remaining);
    const seenApplied = member.applied;
    const page = member.read(next, requested);
    for (const message of page) {
      if (!call.write(toWire(message))) await waitForDrain(call);
    }
    remaining -= page.length;
    if (page.length > 0) next = page[page.length - 1]!.index + 1;
    if (page.length === requested) continue;
    if (!follow || !(await waitForApply(member, call, seenApplied))) break;
  }
  if (!call.cancelled) call.end();
}

/**
 * Rejects a from_index or limit above 2^53 - 1. The proto loader turns uint64
 * fields into JavaScript numbers, which cannot hold larger values exactly,
 * and no log index gets that far.
 */
function checkReadRequest(fromIndex: number, limit: number): void {
  const max = Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(fromIndex)) {
    throw new ReplogError(grpc.status.INVALID_ARGUMENT, `invalid from_index ${fromIndex}: expected at most ${max}`);
  }
  if (!Number.isSafeInteger(limit)) {
    throw new ReplogError(grpc.status.INVALID_ARGUMENT, `invalid limit ${limit}: expected at most ${max}, or 0 for no limit`);
  }
}

/** Resolves true once the member applies past `appliedIndex`, false if the call ends first. */
function waitForApply(member: Member, call: grpc.ServerWritableStream<ReadRequestWire, MessageWire>, appliedIndex: number): Promise<boolean> {
  if (member.applied > appliedIndex) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onApplied = (): void => finish(true);
    const onCancelled = (): void => finish(false);
    const finish = (applied: boolean): void => {
      member.off('applied', onApplied);
      member.off('stopped', onCancelled);
      call.off('cancelled', onCancelled);
      resolve(applied);
    };
    member.on('applied', onApplied);
    member.on('stopped', onCancelled);
    call.on('cancelled', onCancelled);
  });
}

function toWire(message: StoredMessage): MessageWire {
  return { index: message.index, valueset: message.valueset, receivedAtMs: message.receivedAtMs };
}
