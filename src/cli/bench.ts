import * as fs from 'node:fs';
import { connectIngest, type IngestClient } from '../client/ingest-client';
import { runLoad, type LoadOperation } from '../client/load/load-generator';
import { buildLoadReport, formatLoadReport } from '../client/load/load-report';
import { AppendStreamPool } from '../client/stream-pool';
import { connectFailureMessage, refusedTargetMessage } from './connect-failure';
import {
  FlagError,
  parseFlags,
  parseIntegerFlag,
  processIo,
  runCommand,
  type CliIo,
} from './client-flags';
import { loadFlagOptions, loadFlagsHelp, readLoadFlags, uniqueValueMaker, type LoadFlags } from './load-flags';

export const benchDefaults = { streams: 4, window: 64 } as const;
const streamsMax = 1_000;
const windowMax = 100_000;

export const benchHelp = `Usage: replog bench --target HOST:PORT[,HOST:PORT...] [flags]

Append unique valuesets for a warm-up and then a measured interval, and print
throughput, latency percentiles (p50, p90, p99, p99.9, max, in ms) of the
acknowledged appends, errors by gRPC status code and CPU used. Failed appends
count as errors only, not in the latencies. Exit status 0 when at least one
append was acknowledged in the measured interval, 1 otherwise. Members
compile their busiest code in their first 10 to 20 s under load, so give a
fresh cluster --warmup-s 20 for figures of its steady state.

  --mode unary|stream       Append calls, or pipelined AppendStream calls (default unary)
  --streams N               AppendStream calls, stream mode only (default ${benchDefaults.streams})
  --window N                appends in flight per stream, stream mode only (default ${benchDefaults.window})
${loadFlagsHelp}`;

/** Validated flags of `replog bench`. */
export interface BenchFlags extends LoadFlags {
  readonly mode: 'unary' | 'stream';
  readonly streams: number;
  readonly window: number;
}

/** Parse and check the flags; returns null for `--help`. Throws FlagError. */
export function parseBenchFlags(argv: readonly string[]): BenchFlags | null {
  const values = parseFlags(argv, {
    ...loadFlagOptions,
    mode: { type: 'string' },
    streams: { type: 'string' },
    window: { type: 'string' },
  });
  if (values.help) return null;
  const mode = values.mode ?? 'unary';
  if (mode !== 'unary' && mode !== 'stream') {
    throw new FlagError(`invalid --mode "${mode}": expected unary or stream`);
  }
  rejectFlagsOfOtherMode(mode, values.mode !== undefined, values);
  return {
    ...readLoadFlags(values),
    mode,
    streams: parseIntegerFlag('streams', values.streams, benchDefaults.streams, 1, streamsMax),
    window: parseIntegerFlag('window', values.window, benchDefaults.window, 1, windowMax),
  };
}

/**
 * Rejects a flag that the chosen mode would ignore, so that `--streams 4`
 * without `--mode stream` fails instead of measuring unary mode.
 */
function rejectFlagsOfOtherMode(
  mode: BenchFlags['mode'],
  modeGiven: boolean,
  values: { readonly concurrency?: string; readonly streams?: string; readonly window?: string },
): void {
  const modeText = modeGiven ? `with --mode ${mode}` : `in ${mode} mode (the default)`;
  if (mode === 'unary') {
    const flag = (['streams', 'window'] as const).find((name) => values[name] !== undefined);
    if (flag === undefined) return;
    throw new FlagError(
      `invalid --${flag} ${modeText}: --${flag} applies only to --mode stream; ` +
        `add --mode stream, or drop --${flag} and set the requests in flight with --concurrency`,
    );
  }
  if (values.concurrency !== undefined) {
    throw new FlagError(
      `invalid --concurrency ${modeText}: --concurrency applies only to --mode unary; ` +
        'set the appends in flight with --streams and --window instead',
    );
  }
}

/** `replog bench`: returns the exit status. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  return runCommand('replog bench', io, async () => {
    const flags = parseBenchFlags(argv);
    if (flags === null) {
      io.stdout.write(benchHelp);
      return 0;
    }
    const missing = flags.pids.filter((pid) => !fs.existsSync(`/proc/${pid}`));
    if (missing.length > 0) {
      throw new FlagError(`invalid --pids: no process has PID ${missing.join(', ')}; give the PIDs of running members`);
    }
    return bench(flags, io);
  });
}

async function bench(flags: BenchFlags, io: CliIo): Promise<number> {
  const refusal = await refusedTargetMessage(flags.target);
  if (refusal !== null) throw new Error(refusal);
  const client = connectIngest(flags.target);
  try {
    await client.waitForReady(flags.deadlineMs).catch(async () => {
      throw new Error(await connectFailureMessage(flags.target, flags.deadlineMs));
    });
    const load = benchOperation(client, flags);
    const workerCount = flags.mode === 'unary' ? flags.concurrency : flags.streams * flags.window;
    const measurement = await runLoad(
      {
        workerCount,
        ratePerSecond: flags.ratePerSecond,
        warmupMs: flags.warmupS * 1000,
        durationMs: flags.durationS * 1000,
        watchedPids: flags.pids,
      },
      load.operation,
    );
    await load.close();
    const report = buildLoadReport(benchSettings(flags), measurement);
    io.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatLoadReport(report));
    return report.acknowledged > 0 ? 0 : 1;
  } finally {
    client.close();
  }
}

interface BenchLoad {
  readonly operation: LoadOperation;
  readonly close: () => Promise<void>;
}

function benchOperation(client: IngestClient, flags: BenchFlags): BenchLoad {
  const valueOf = uniqueValueMaker(flags.valueBytes, flags.valueOrder);
  if (flags.mode === 'unary') {
    return {
      operation: async (_worker, sequence) => {
        await client.append(valueOf(sequence), flags.deadlineMs);
      },
      close: async () => undefined,
    };
  }
  const pool = new AppendStreamPool(client, flags.streams, {
    windowSize: flags.window,
    replyTimeoutMs: flags.deadlineMs,
  });
  return {
    operation: async (worker, sequence) => {
      await pool.append(worker, valueOf(sequence));
    },
    close: () => pool.close(),
  };
}

function benchSettings(flags: BenchFlags): Record<string, string | number> {
  const inFlight: Record<string, number> =
    flags.mode === 'unary'
      ? { concurrency: flags.concurrency }
      : { streams: flags.streams, window: flags.window };
  return {
    system: 'replog',
    target: flags.target,
    mode: flags.mode,
    ...inFlight,
    rate: flags.ratePerSecond === 0 ? 'max' : flags.ratePerSecond,
    warmupS: flags.warmupS,
    durationS: flags.durationS,
    valueBytes: flags.valueBytes,
    valueOrder: flags.valueOrder,
  };
}
