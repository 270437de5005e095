import { ChaosSchedule } from './chaos';
import { Cluster } from './cluster';
import { checkLiveness } from './liveness';
import { describeRunShape, drawRunShape } from './run-shape';
import { InvariantViolation } from './violation';

export interface RunSettings {
  /** Ticks of faults and proposals before the network heals. */
  readonly chaosTicks: number;
  /** Bound after healing for a leader, every entry committed and fresh proposals applied. */
  readonly livenessTicksMax: number;
  readonly traceLinesKept?: number;
  readonly echoTrace?: (line: string) => void;
}

/** Trace lines printed for a failure: enough to see the last elections and commits. */
const FAILURE_TRACE_LINES = 120;

export const RUN_SETTINGS_DEFAULT: RunSettings = { chaosTicks: 300, livenessTicksMax: 200 };

export interface RunResult {
  readonly seed: number;
  readonly ok: boolean;
  /** The broken invariant, or the error the core threw. */
  readonly failure: Error | null;
  readonly description: string;
  readonly traceDigest: string;
  readonly traceTail: readonly string[];
  readonly traceLinesOmitted: number;
  readonly committedCount: number;
  readonly acknowledgedCount: number;
}

/**
 * Runs one seed: faults and proposals for `chaosTicks`, then healing and the
 * liveness bound, then the final log against every acknowledged value. The
 * same seed gives the same run and the same trace digest.
 */
export function runSeed(seed: number, settings: RunSettings = RUN_SETTINGS_DEFAULT): RunResult {
  const shape = drawRunShape(seed);
  const cluster = new Cluster({ ...shape.cluster, traceLinesKept: settings.traceLinesKept, echoTrace: settings.echoTrace });
  let failure: Error | null = null;
  try {
    cluster.log(describeRunShape(shape));
    cluster.start();
    const chaos = new ChaosSchedule(cluster, shape.rates);
    for (let tick = 0; tick < settings.chaosTicks; tick += 1) {
      chaos.step();
      cluster.runTicks(1);
    }
    // A member that lost its disk copies the whole log again, one entry per
    // round trip in the slowest shapes, so runs with wipes get twice the bound.
    const wipes = (shape.rates.wipeRate ?? 0) > 0;
    checkLiveness(cluster, cluster.rng, wipes ? 2 * settings.livenessTicksMax : settings.livenessTicksMax);
    cluster.ledger.checkFinalLog((index) => cluster.checker.committedKeyAt(index));
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    cluster.log(`FAILED ${failure instanceof InvariantViolation ? failure.message : (failure.stack ?? failure.message)}`);
  }
  const tail = cluster.trace.tail();
  return {
    seed,
    ok: failure === null,
    failure,
    description: describeRunShape(shape),
    traceDigest: cluster.trace.digest(),
    traceTail: tail.lines,
    traceLinesOmitted: tail.omitted,
    committedCount: cluster.checker.committedCount(),
    acknowledgedCount: cluster.ledger.acknowledgedCount(),
  };
}

/** Formats a run's seed, shape, failure and the newest trace lines. */
export function formatRun(result: RunResult, traceLines: number = FAILURE_TRACE_LINES): string {
  const status = result.ok ? 'passed' : 'FAILED';
  const lines = [`seed ${result.seed} ${status}: ${result.description}`];
  if (result.failure !== null) lines.push(`  ${result.failure.message}`);
  const printed = result.traceTail.slice(-traceLines);
  const omitted = result.traceLinesOmitted + result.traceTail.length - printed.length;
  lines.push(`  trace (${omitted} earlier lines omitted; replay: npm run sim -- --seed ${result.seed} --trace):`);
  for (const line of printed) lines.push(`    ${line}`);
  lines.push(`  trace digest ${result.traceDigest}`);
  return lines.join('\n');
}
