import { ChaosSchedule, type ChaosRates } from './chaos';
import { Cluster, type ClusterOptions, type CoreSettings } from './cluster';
import { checkLiveness } from './liveness';
import { TIME_UNITS_PER_TICK, type NetworkFaults } from './network';
import { Rng } from './rng';
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

/** The whole random shape of one run, drawn from its seed. */
interface RunShape {
  readonly cluster: ClusterOptions;
  readonly rates: ChaosRates;
}

/** Draws member count, core settings, network faults and fault rates from a seed. */
function drawShape(seed: number, settings: RunSettings): RunShape {
  const rng = new Rng(seed ^ 0x5eed5eed);
  const core: CoreSettings = {
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: rng.pick([1, 2, 3]),
    preVote: rng.chance(0.75),
    checkQuorum: rng.chance(0.75),
    appendEntriesMax: rng.pick([1, 1, 4, 64]),
    appendBytesMax: rng.pick([16, 64 * 1024]),
    inflightAppendsMax: rng.pick([1, 2, 8]),
  };
  const faults: NetworkFaults = {
    lossRate: rng.next() * 0.3,
    duplicateRate: rng.next() * 0.1,
    delayUnitsMin: 1,
    delayUnitsMax: rng.int(2, 2 * TIME_UNITS_PER_TICK),
    lateRate: rng.next() * 0.2,
    lateUnitsMax: rng.int(1, 5) * TIME_UNITS_PER_TICK,
  };
  const rates: ChaosRates = {
    proposalRate: rng.pick([0.2, 0.5, 1]),
    partitionRate: rng.pick([0, 0.01, 0.03, 0.06]),
    healRate: rng.pick([0.05, 0.1, 0.3]),
    crashRate: rng.pick([0, 0.01, 0.03, 0.06]),
    compactRate: rng.pick([0, 0.05, 0.2]),
    downTicksMax: rng.pick([2, 5, 20, 60]),
  };
  const cluster: ClusterOptions = {
    seed,
    memberCount: rng.pick([3, 3, 4, 5, 5, 6, 7]),
    core,
    faults,
    readyDeferRate: rng.pick([0, 0.3, 0.7]),
    readyCrashRate: rng.pick([0, 0.005, 0.02, 0.05]),
    newLeaderCrashRate: rng.pick([0, 0.1, 0.3]),
    tickSkewUnitsMax: rng.pick([0, 1, 2, 3]),
    traceLinesKept: settings.traceLinesKept,
    echoTrace: settings.echoTrace,
  };
  return { cluster, rates };
}

function describeShape(shape: RunShape): string {
  const { cluster, rates } = shape;
  const faults = cluster.faults;
  return [
    `members=${cluster.memberCount}`,
    `preVote=${cluster.core.preVote} checkQuorum=${cluster.core.checkQuorum}`,
    `heartbeat=${cluster.core.heartbeatIntervalTicks} appendMax=${cluster.core.appendEntriesMax} inflight=${cluster.core.inflightAppendsMax}`,
    `loss=${faults.lossRate.toFixed(2)} dup=${faults.duplicateRate.toFixed(2)} late=${faults.lateRate.toFixed(2)}`,
    `crash=${rates.crashRate} readyCrash=${cluster.readyCrashRate ?? 0} newLeaderCrash=${cluster.newLeaderCrashRate ?? 0} down=${rates.downTicksMax}`,
    `partition=${rates.partitionRate} compact=${rates.compactRate} readyDefer=${cluster.readyDeferRate}`,
  ].join(' ');
}

/**
 * Runs one seed: faults and proposals for `chaosTicks`, then healing and the
 * liveness bound, then the final log against every acknowledged value. The
 * same seed gives the same run and the same trace digest.
 */
export function runSeed(seed: number, settings: RunSettings = RUN_SETTINGS_DEFAULT): RunResult {
  const shape = drawShape(seed, settings);
  const cluster = new Cluster(shape.cluster);
  let failure: Error | null = null;
  try {
    cluster.log(describeShape(shape));
    cluster.start();
    const chaos = new ChaosSchedule(cluster, shape.rates);
    for (let tick = 0; tick < settings.chaosTicks; tick += 1) {
      chaos.step();
      cluster.runTicks(1);
    }
    checkLiveness(cluster, cluster.rng, settings.livenessTicksMax);
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
    description: describeShape(shape),
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
  const shown = result.traceTail.slice(-traceLines);
  const omitted = result.traceLinesOmitted + result.traceTail.length - shown.length;
  lines.push(`  trace (${omitted} earlier lines omitted; replay: npm run sim -- --seed ${result.seed} --trace):`);
  for (const line of shown) lines.push(`    ${line}`);
  lines.push(`  trace digest ${result.traceDigest}`);
  return lines.join('\n');
}
