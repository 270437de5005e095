import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderReport } from '../experiment/report';
import { phasePlanMs, runExperiment, type ExperimentOptions } from '../experiment/run-experiment';
import { FlagError, parseFlags, parseIntegerFlag, processIo, runCommand, type CliIo } from './client-flags';
import { interruptedExitCode, watchInterrupt } from './interrupt';

export const experimentDefaults = {
  minutes: 1,
  report: 'experiment-report.md',
  size: 3,
  rate: 200,
  maxMode: 'stream',
  /** Phase 3 appends in flight by mode: 8 AppendStream calls x 64, or 64 unary calls. */
  maxConcurrency: { stream: 512, unary: 64 },
} as const;

const minutesMax = 1_440;

export const experimentHelp = `Usage: replog experiment [flags]

Reproduce the prototype's experiments on a fresh local cluster (HAProxy in
front when installed, else the client's round robin over the members):

  phase 1 "in sync"          ${experimentDefaults.rate} messages/s for ${phasePlanMs.steady / 1000} s x M
  phase 2 "one member down"  the same load; a follower is killed (SIGKILL) after
                             ${phasePlanMs.beforeKill / 1000} s x M, restarted ${phasePlanMs.down / 1000} s x M later, load goes on
                             ${phasePlanMs.afterRestart / 1000} s x M
  phase 3 "load test"        as fast as possible for ${phasePlanMs.max / 1000} s x M

After each phase the load stops, the members converge, and the verify logic
(see replog verify --help) reads every member and compares them, while every
acknowledged append is looked up on every member. Then it writes a Markdown
report, prints its path and a one-line verdict, and stops the cluster.

  --minutes M             scale of every duration, may be fractional (default ${experimentDefaults.minutes})
  --data DIR              a new or empty folder for the members' data and logs
                          (default: a new folder under ${os.tmpdir()}); kept afterwards
  --report FILE           where to write the report (default ${experimentDefaults.report})
  --size N                members: 3, 5, 7 or 9 (default ${experimentDefaults.size})
  --rate N                offered messages/s in phases 1 and 2 (default ${experimentDefaults.rate})
  --max-mode unary|stream phase 3 with unary Append calls or AppendStream calls
                          (default ${experimentDefaults.maxMode})
  --max-concurrency N     phase 3 appends in flight (default ${experimentDefaults.maxConcurrency.stream}
                          over 8 streams, ${experimentDefaults.maxConcurrency.unary} in unary mode)
  --base-port P           first of 2N+2 consecutive ports (default: free ports)
  -h, --help              show this help

Ctrl-C stops the load and the cluster and writes the report of the phases done.
Exit status: 0 when after every phase all members are identical and no
acknowledged message is missing, 1 otherwise, 2 for invalid flags, 130 when
interrupted.
`;

export interface ExperimentFlags extends ExperimentOptions {
  readonly reportPath: string;
}

function parseMinutes(text: string | undefined): number {
  if (text === undefined) return experimentDefaults.minutes;
  const value = /^\d*\.?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(value > 0 && value <= minutesMax)) {
    throw new FlagError(`invalid --minutes "${text}": expected a number above 0 and at most ${minutesMax}, e.g. 1 or 0.2`);
  }
  return value;
}

function checkDataDir(text: string): string {
  const dir = path.resolve(text);
  if (fs.existsSync(dir) && (!fs.statSync(dir).isDirectory() || fs.readdirSync(dir).length > 0)) {
    throw new FlagError(`invalid --data "${text}": expected a new or empty folder (the experiment starts from an empty cluster)`);
  }
  return dir;
}

/** Parse and check the flags; returns null for `--help`. Throws FlagError. */
export function parseExperimentFlags(argv: readonly string[]): ExperimentFlags | null {
  const values = parseFlags(argv, {
    minutes: { type: 'string' },
    data: { type: 'string' },
    report: { type: 'string' },
    size: { type: 'string' },
    rate: { type: 'string' },
    'max-mode': { type: 'string' },
    'max-concurrency': { type: 'string' },
    'base-port': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return null;
  const size = parseIntegerFlag('size', values.size, experimentDefaults.size, 3, 9);
  if (size % 2 === 0) throw new FlagError(`invalid --size "${values.size}": expected 3, 5, 7 or 9`);
  const maxMode = values['max-mode'] ?? experimentDefaults.maxMode;
  if (maxMode !== 'unary' && maxMode !== 'stream') {
    throw new FlagError(`invalid --max-mode "${maxMode}": expected unary or stream`);
  }
  const basePort = parseIntegerFlag('base-port', values['base-port'], 0, 0, 65_000);
  if (basePort !== 0 && basePort < 1024) throw new FlagError(`invalid --base-port "${values['base-port']}": expected 0 or a port from 1024 to 65000`);
  const reportPath = path.resolve(values.report ?? experimentDefaults.report);
  if (!fs.existsSync(path.dirname(reportPath))) {
    throw new FlagError(`invalid --report "${values.report}": expected a file in an existing folder`);
  }
  return {
    minutes: parseMinutes(values.minutes),
    dataDir: values.data === undefined ? '' : checkDataDir(values.data),
    reportPath,
    size,
    ratePerSecond: parseIntegerFlag('rate', values.rate, experimentDefaults.rate, 1, 100_000),
    basePort,
    maxConcurrency: parseIntegerFlag('max-concurrency', values['max-concurrency'], experimentDefaults.maxConcurrency[maxMode], 1, 10_000),
    maxMode,
  };
}

/** `replog experiment`: returns the exit status. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  return runCommand('replog experiment', io, async () => {
    const parsed = parseExperimentFlags(argv);
    if (parsed === null) {
      io.stdout.write(experimentHelp);
      return 0;
    }
    const dataDir = parsed.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'replog-experiment-'));
    const flags: ExperimentFlags = { ...parsed, dataDir };
    // A repeated Ctrl-C is ignored, so that the run still stops the cluster it started.
    const interrupt = watchInterrupt({
      onFirst: () => io.stdout.write('\ninterrupted: stopping the load and the cluster...\n'),
      onRepeat: 'ignore',
    });
    // A closed stdout (e.g. piped into head) must not kill the run and orphan the cluster;
    // the listener stays until the process ends, as the last write fails asynchronously.
    io.stdout.on('error', () => undefined);
    try {
      const result = await runExperiment(flags, {
        signal: interrupt.signal,
        progress: (line) => io.stdout.write(`${line}\n`),
      });
      fs.writeFileSync(flags.reportPath, renderReport(result));
      io.stdout.write(`report: ${flags.reportPath}\n${result.verdict}\n`);
      if (result.interrupted) return interruptedExitCode;
      return result.passed ? 0 : 1;
    } finally {
      interrupt.dispose();
    }
  });
}
