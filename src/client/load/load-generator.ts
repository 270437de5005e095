import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as hdr from 'hdr-histogram-js';
import { errorCode, statusCodeName } from '../errors';
import { takeCpuSample, watchedCpuBetween, type CpuSample, type ProcessCpuUse } from './process-cpu';

/** The shape of one load run. */
export interface LoadPlan {
  /** Workers, each with at most one request in flight. */
  readonly workerCount: number;
  /** Offered load in requests per second over all workers; 0 = as fast as replies allow. */
  readonly ratePerSecond: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Processes whose CPU use over the measured interval is reported. */
  readonly watchedPids: readonly number[];
}

/** One request; `worker` is the caller's number, `sequence` unique in the run. */
export type LoadOperation = (worker: number, sequence: number) => Promise<void>;

/** Latency percentiles in milliseconds. */
export interface LatencySummaryMs {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

/** Results of the measured interval (warm-up excluded). */
export interface LoadMeasurement {
  readonly measuredMs: number;
  /** Requests that succeeded with their reply inside the measured interval. */
  readonly acknowledged: number;
  readonly acknowledgedPerSecond: number;
  /** Failed requests by gRPC status code name. */
  readonly errorsByCode: Readonly<Record<string, number>>;
  /** First error message seen for each code. */
  readonly firstErrorByCode: Readonly<Record<string, string>>;
  readonly latencyMs: LatencySummaryMs;
  readonly selfCpuMs: number;
  readonly watchedCpu: readonly ProcessCpuUse[];
}

/** Latencies are recorded in microseconds, from 1 µs up to one hour. */
const latencyUsMax = 3_600_000_000;

interface RunClock {
  readonly startMs: number;
  readonly measureStartMs: number;
  readonly measureEndMs: number;
  readonly intervalMs: number;
}

/**
 * Run `operation` from `plan.workerCount` workers for the warm-up and then the
 * measured interval; results cover replies that arrive in the measured interval.
 *
 * With a fixed rate the sends follow an open-loop schedule: request `n` is due at
 * `start + n / rate`, and its latency is measured from that due time, not from
 * when a free worker sent it. Time spent queued behind slow replies therefore
 * counts as latency (correction for coordinated omission).
 */
export async function runLoad(plan: LoadPlan, operation: LoadOperation): Promise<LoadMeasurement> {
  const startMs = performance.now();
  const clock: RunClock = {
    startMs,
    measureStartMs: startMs + plan.warmupMs,
    measureEndMs: startMs + plan.warmupMs + plan.durationMs,
    intervalMs: plan.ratePerSecond > 0 ? 1000 / plan.ratePerSecond : 0,
  };
  const tally = new LoadTally();
  const schedule = { nextSequence: 0 };
  let cpuStart: CpuSample | null = null;
  let cpuEnd: CpuSample | null = null;
  const cpuTimers = [
    setTimeout(() => (cpuStart = takeCpuSample(plan.watchedPids)), plan.warmupMs),
    setTimeout(() => (cpuEnd = takeCpuSample(plan.watchedPids)), plan.warmupMs + plan.durationMs),
  ];

  const workers = Array.from({ length: plan.workerCount }, (_, worker) =>
    runWorker(worker, clock, schedule, tally, operation),
  );
  await Promise.all(workers);
  cpuTimers.forEach(clearTimeout);
  try {
    return tally.summarize(plan, cpuStart ?? takeCpuSample(plan.watchedPids), cpuEnd ?? takeCpuSample(plan.watchedPids));
  } finally {
    tally.histogram.destroy();
  }
}

async function runWorker(
  worker: number,
  clock: RunClock,
  schedule: { nextSequence: number },
  tally: LoadTally,
  operation: LoadOperation,
): Promise<void> {
  for (;;) {
    const sequence = schedule.nextSequence++;
    const openLoop = clock.intervalMs > 0;
    const dueMs = openLoop ? clock.startMs + sequence * clock.intervalMs : performance.now();
    if (dueMs >= clock.measureEndMs) return;
    const waitMs = dueMs - performance.now();
    if (waitMs > 0) await sleep(waitMs);

    let failure: unknown = null;
    try {
      await operation(worker, sequence);
    } catch (error) {
      failure = error;
    }
    const doneMs = performance.now();
    if (doneMs >= clock.measureStartMs && doneMs < clock.measureEndMs) {
      tally.record(doneMs - dueMs, failure);
    }
  }
}

class LoadTally {
  readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: latencyUsMax,
    numberOfSignificantValueDigits: 3,
  });
  private acknowledged = 0;
  private readonly errorsByCode: Record<string, number> = {};
  private readonly firstErrorByCode: Record<string, string> = {};

  record(latencyMs: number, failure: unknown): void {
    if (failure === null) {
      this.acknowledged += 1;
      const latencyUs = Math.round(latencyMs * 1000);
      this.histogram.recordValue(Math.min(latencyUsMax, Math.max(1, latencyUs)));
      return;
    }
    const code = statusCodeName(errorCode(failure));
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    this.firstErrorByCode[code] ??= failure instanceof Error ? failure.message : String(failure);
  }

  summarize(plan: LoadPlan, cpuStart: CpuSample, cpuEnd: CpuSample): LoadMeasurement {
    const selfUs =
      cpuEnd.self.user - cpuStart.self.user + (cpuEnd.self.system - cpuStart.self.system);
    return {
      measuredMs: plan.durationMs,
      acknowledged: this.acknowledged,
      acknowledgedPerSecond: this.acknowledged / (plan.durationMs / 1000),
      errorsByCode: this.errorsByCode,
      firstErrorByCode: this.firstErrorByCode,
      latencyMs: this.latencySummaryMs(),
      selfCpuMs: selfUs / 1000,
      watchedCpu: watchedCpuBetween(cpuStart, cpuEnd),
    };
  }

  private latencySummaryMs(): LatencySummaryMs {
    if (this.acknowledged === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
    const maxMs = this.histogram.maxValue / 1000;
    // A percentile is the top of its bucket (3 significant digits), which can
    // exceed the largest recorded value; cap it so that p99.9 <= max.
    const atPercentile = (percentile: number): number =>
      Math.min(maxMs, this.histogram.getValueAtPercentile(percentile) / 1000);
    return {
      p50: atPercentile(50),
      p90: atPercentile(90),
      p99: atPercentile(99),
      p999: atPercentile(99.9),
      max: maxMs,
      mean: this.histogram.mean / 1000,
    };
  }
}
