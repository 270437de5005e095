import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { IngestError, clientCancelMessage, errorCode } from './errors';
import type { AppendReplyWire, AppendRequestWire, AppendResult } from './types';

/** Settings of one `AppendStream` call. */
export interface AppendStreamOptions {
  /** Maximum number of appends sent and still awaiting their reply. */
  readonly windowSize?: number;
  /**
   * Time the oldest unanswered append may wait for its reply. When it passes,
   * the whole stream is cancelled and every unanswered append fails with
   * DEADLINE_EXCEEDED (gRPC cannot cancel one message of a stream).
   */
  readonly replyTimeoutMs?: number;
}

export const appendStreamDefaults = {
  windowSize: 128,
  replyTimeoutMs: 10_000,
} as const;

/** How often the reply timeout of the oldest unanswered append is checked. */
const timeoutCheckIntervalMsMax = 250;

interface PendingAppend {
  readonly sentAtMs: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: Error) => void;
}

interface RoomWaiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

type DuplexCall = grpc.ClientDuplexStream<AppendRequestWire, AppendReplyWire>;

/**
 * A pipelined `Ingest.AppendStream` call. `append()` returns one promise per
 * valueset; the server replies in request order, so the replies settle the
 * promises in the order of the `append()` calls. At most `windowSize` appends
 * are unanswered; further `append()` calls wait (in call order) for room.
 */
export class AppendStream {
  readonly windowSize: number;
  private readonly replyTimeoutMs: number;
  private readonly call: DuplexCall;
  private pending: PendingAppend[] = [];
  private pendingHead = 0;
  private readonly roomWaiters: RoomWaiter[] = [];
  /** Window slots handed to woken waiters that have not sent yet. */
  private reservedSlots = 0;
  private failure: IngestError | null = null;
  private readonly finished: Promise<void>;
  private markFinished: () => void = () => undefined;
  private readonly timeoutCheck: NodeJS.Timeout;

  constructor(call: DuplexCall, options: AppendStreamOptions = {}) {
    this.windowSize = options.windowSize ?? appendStreamDefaults.windowSize;
    this.replyTimeoutMs = options.replyTimeoutMs ?? appendStreamDefaults.replyTimeoutMs;
    if (!Number.isInteger(this.windowSize) || this.windowSize < 1) {
      throw new RangeError(`invalid windowSize ${this.windowSize}: expected an integer >= 1`);
    }
    this.call = call;
    this.finished = new Promise((resolve) => {
      this.markFinished = resolve;
    });
    call.on('data', (reply: AppendReplyWire) => this.onReply(reply));
    call.on('error', (error: Error) => this.fail(errorCode(error), errorDetails(error)));
    call.on('end', () => this.onEnd());
    const checkIntervalMs = Math.min(timeoutCheckIntervalMsMax, this.replyTimeoutMs);
    this.timeoutCheck = setInterval(() => this.checkReplyTimeout(), checkIntervalMs);
    this.timeoutCheck.unref();
  }

  /** Number of appends sent and still awaiting their reply. */
  get inFlight(): number {
    return this.pending.length - this.pendingHead;
  }

  /** True after the stream failed; every later `append()` rejects. */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** Send one valueset; resolves with its reply or rejects with an IngestError. */
  async append(valueset: string): Promise<AppendResult> {
    if (this.failure) throw this.failure;
    const windowFull = this.inFlight + this.reservedSlots >= this.windowSize;
    if (windowFull || this.roomWaiters.length > 0) {
      // A waiter is woken with a slot reserved for it, so that it sends before
      // any append() called after it.
      await new Promise<void>((resolve, reject) => this.roomWaiters.push({ resolve, reject }));
      this.reservedSlots -= 1;
    }
    if (this.failure) throw this.failure;
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ sentAtMs: performance.now(), resolve, reject });
      this.call.write({ valueset });
    });
  }

  /**
   * Half-close the stream and wait until the server has replied to every append and ended the call.
   * The call is cancelled when the server has not ended it `replyTimeoutMs`
   * after close(), checked again every `replyTimeoutMs` while replies are due.
   */
  async close(): Promise<void> {
    if (!this.failure) this.call.end();
    const closeTimer = setInterval(() => {
      if (this.inFlight === 0) this.cancel();
    }, this.replyTimeoutMs);
    try {
      await this.finished;
    } finally {
      clearInterval(closeTimer);
    }
  }

  /** Cancel the call; unanswered appends fail with CANCELLED. */
  cancel(): void {
    this.fail(grpc.status.CANCELLED, clientCancelMessage);
  }

  private onReply(reply: AppendReplyWire): void {
    const head = this.shiftPending();
    if (!head) {
      this.fail(grpc.status.INTERNAL, 'server sent a reply with no append waiting for it');
      return;
    }
    if (reply.code !== grpc.status.OK) {
      head.reject(new IngestError(reply.code, reply.error, streamReplyPushbackMs(reply.code)));
    } else {
      head.resolve({ index: reply.index, duplicate: reply.duplicate });
    }
    const waiter = this.roomWaiters.shift();
    if (waiter) {
      this.reservedSlots += 1;
      waiter.resolve();
    }
  }

  /** Mark the stream failed, so that later appends reject instead of waiting forever. */
  private onEnd(): void {
    const unanswered = this.inFlight;
    const reason =
      unanswered > 0 ? `server ended the stream with ${unanswered} appends unanswered` : 'server ended the stream';
    this.fail(grpc.status.UNAVAILABLE, reason);
  }

  private checkReplyTimeout(): void {
    const head = this.pending[this.pendingHead];
    if (head && performance.now() - head.sentAtMs > this.replyTimeoutMs) {
      this.fail(
        grpc.status.DEADLINE_EXCEEDED,
        `no reply within ${this.replyTimeoutMs} ms; stream cancelled`,
      );
    }
  }

  private fail(code: grpc.status, message: string): void {
    if (this.failure) return;
    this.failure = new IngestError(code, message);
    const failure = this.failure;
    for (let head = this.shiftPending(); head; head = this.shiftPending()) head.reject(failure);
    for (const waiter of this.roomWaiters.splice(0)) waiter.reject(failure);
    this.call.cancel();
    this.stop();
  }

  private stop(): void {
    clearInterval(this.timeoutCheck);
    this.markFinished();
  }

  /** Remove the oldest unanswered append; compacts the array now and then. */
  private shiftPending(): PendingAppend | undefined {
    const head = this.pending[this.pendingHead];
    if (!head) return undefined;
    this.pendingHead += 1;
    if (this.pendingHead >= 1024 && this.pendingHead * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    return head;
  }
}

function errorDetails(error: Error): string {
  const details = (error as Partial<grpc.ServiceError>).details;
  return typeof details === 'string' && details !== '' ? details : error.message;
}

/**
 * Returns the pause that a failed AppendStream reply requests. A reply cannot
 * carry trailers, but its RESOURCE_EXHAUSTED always means that the member was
 * overloaded: a request too large fails the whole stream instead. So that
 * code requests a retry after the client's own back-off, and no more.
 */
function streamReplyPushbackMs(code: grpc.status): number | null {
  return code === grpc.status.RESOURCE_EXHAUSTED ? 0 : null;
}
