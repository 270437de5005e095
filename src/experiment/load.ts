// The experiment's load: unique appends at a fixed offered rate (open loop)
// or as fast as `concurrency` workers get replies, retried on failure (safe:
// members store each valueset once), each acknowledgement recorded with its
// index so that missing messages can be counted afterwards.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { errorCode, statusCodeName } from '../client/errors';
import type { IngestClient } from '../client/ingest-client';
import { AppendStreamPool } from '../client/stream-pool';
import type { AppendResult } from '../client/types';
import type { AckLog } from './acks';

export interface LoadSpec {
  /** Offered messages per second; 0 = as fast as replies allow. */
  readonly ratePerSecond: number;
  /** At rate 0: workers, each with one append in flight. At a fixed rate: most appends in flight. */
  readonly concurrency: number;
  /** Unary Append calls, or AppendStream calls (`streams` of them, shared by the workers). */
  readonly mode: 'unary' | 'stream';
  readonly streams: number;
  readonly deadlineMs: number;
  /** Appends still unanswered this long after stop() are given up. */
  readonly drainMs: number;
}

export interface LoadStats {
  readonly durationMs: number;
  /** Appends started (each unique valueset counts once, however often retried). */
  readonly started: number;
  readonly acknowledged: number;
  /** Acknowledgements that reported `duplicate` (a retry of an append that had been stored). */
  readonly duplicateReplies: number;
  /** Appends given up: not acknowledged, outcome unknown. */
  readonly failed: number;
  /** Every failed attempt, retried or not, by gRPC status name. */
  readonly attemptErrorsByCode: Readonly<Record<string, number>>;
  /** Appends given up, by the status of their last attempt. */
  readonly failedByCode: Readonly<Record<string, number>>;
  readonly firstErrorByCode: Readonly<Record<string, string>>;
  /** Acknowledged before stop(), per second of load. */
  readonly acknowledgedPerSecond: number;
  /** Fixed rate only: the most appends that were due but not yet sent. */
  readonly maxBehindSchedule: number;
}

const retryBackoffMs = { first: 50, max: 1_000 } as const;
/** Fixed-rate scheduler period. */
const tickMs = 5;

/** A running load; stop() ends it and returns what happened. */
export class PhaseLoad {
  private readonly startedAtMs = performance.now();
  private stoppedAtMs: number | null = null;
  private stopping = false;
  private giveUp = false;
  private nextSequence = 0;
  private inFlight = 0;
  private acknowledged = 0;
  private acknowledgedBeforeStop = 0;
  private duplicateReplies = 0;
  private failed = 0;
  private maxBehind = 0;
  private readonly attemptErrors: Record<string, number> = {};
  private readonly failedByCode: Record<string, number> = {};
  private readonly firstError: Record<string, string> = {};
  private readonly pool: AppendStreamPool | null;
  private readonly running: Promise<void>;
  private readonly settled: Promise<void>[] = [];
  /** Aborted to cut retry pauses short when the load is abandoned. */
  private readonly backoff = new AbortController();

  constructor(
    private readonly client: IngestClient,
    private readonly spec: LoadSpec,
    private readonly acks: AckLog,
    private readonly valuesetOf: (sequence: number) => string,
  ) {
    this.pool = spec.mode === 'stream'
      ? new AppendStreamPool(client, spec.streams, {
        windowSize: Math.max(1, Math.ceil(spec.concurrency / spec.streams)),
        replyTimeoutMs: spec.deadlineMs,
      })
      : null;
    this.running = spec.ratePerSecond > 0 ? this.runFixedRate() : this.runWorkers();
  }

  /** Acknowledged so far. */
  get acknowledgedCount(): number {
    return this.acknowledged;
  }

  /**
   * Stops sending, waits for the appends in flight, and returns the stats. They
   * are retried for at most `drainMs`, or not at all with `abandon` (Ctrl-C).
   */
  async stop(abandon = false): Promise<LoadStats> {
    if (abandon) this.abandon();
    if (!this.stopping) {
      this.stopping = true;
      this.stoppedAtMs = performance.now();
      this.acknowledgedBeforeStop = this.acknowledged;
    }
    await this.running;
    const drained = Promise.all(this.settled);
    // After drainMs no append is retried again; those in flight end within their deadline.
    const timer = setTimeout(() => this.abandon(), this.spec.drainMs);
    await drained;
    clearTimeout(timer);
    await this.pool?.close();
    const durationMs = (this.stoppedAtMs ?? performance.now()) - this.startedAtMs;
    return {
      durationMs,
      started: this.nextSequence,
      acknowledged: this.acknowledged,
      duplicateReplies: this.duplicateReplies,
      failed: this.failed,
      attemptErrorsByCode: this.attemptErrors,
      failedByCode: this.failedByCode,
      firstErrorByCode: this.firstError,
      acknowledgedPerSecond: durationMs > 0 ? this.acknowledgedBeforeStop / (durationMs / 1000) : 0,
      maxBehindSchedule: this.maxBehind,
    };
  }

  /** Open loop: append n is due at start + n / rate, whenever earlier ones are answered. */
  private async runFixedRate(): Promise<void> {
    while (!this.stopping) {
      const due = Math.floor(((performance.now() - this.startedAtMs) * this.spec.ratePerSecond) / 1000) + 1;
      while (this.nextSequence < due && this.inFlight < this.spec.concurrency) {
        const sequence = this.nextSequence++;
        this.launch(sequence, sequence);
      }
      this.maxBehind = Math.max(this.maxBehind, due - this.nextSequence);
      await sleep(tickMs);
    }
  }

  /** No more retries; appends waiting for one give up now. */
  private abandon(): void {
    this.giveUp = true;
    this.backoff.abort();
  }

  /** Closed loop: each worker sends its next append when the previous one is answered. */
  private async runWorkers(): Promise<void> {
    const worker = async (slot: number): Promise<void> => {
      while (!this.stopping) await this.appendOne(this.nextSequence++, slot);
    };
    const workers = Array.from({ length: this.spec.concurrency }, (_, slot) => worker(slot));
    this.settled.push(...workers);
    await Promise.resolve();
  }

  private launch(sequence: number, slot: number): void {
    this.settled.push(this.appendOne(sequence, slot));
    if (this.settled.length > 4096) this.compactSettled();
  }

  private compactSettled(): void {
    // Finished appends need not be awaited again; keep the pending ones only.
    const pending = this.settled.splice(0);
    this.settled.push(Promise.all(pending).then(() => undefined));
  }

  private async appendOne(sequence: number, slot: number): Promise<void> {
    this.inFlight += 1;
    const valueset = this.valuesetOf(sequence);
    try {
      for (let attempt = 0; ; attempt++) {
        let result: AppendResult;
        try {
          result = await this.send(valueset, slot);
        } catch (error) {
          const code = errorCode(error);
          const name = statusCodeName(code);
          this.attemptErrors[name] = (this.attemptErrors[name] ?? 0) + 1;
          this.firstError[name] ??= error instanceof Error ? error.message : String(error);
          if (code !== grpc.status.INVALID_ARGUMENT && !this.giveUp) {
            const pauseMs = Math.min(retryBackoffMs.max, retryBackoffMs.first * 2 ** Math.min(attempt, 10));
            await sleep(pauseMs, undefined, { signal: this.backoff.signal }).catch(() => undefined);
            if (!this.giveUp) continue;
          }
          this.failed += 1;
          this.failedByCode[name] = (this.failedByCode[name] ?? 0) + 1;
          return;
        }
        this.acks.record(sequence, result.index);
        this.acknowledged += 1;
        if (result.duplicate) this.duplicateReplies += 1;
        return;
      }
    } finally {
      this.inFlight -= 1;
    }
  }

  private send(valueset: string, slot: number): Promise<AppendResult> {
    return this.pool ? this.pool.append(slot, valueset) : this.client.append(valueset, this.spec.deadlineMs);
  }
}
