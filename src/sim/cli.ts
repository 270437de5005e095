// `npm run sim -- --seeds N --from S` runs N seeds from seed S;
// `npm run sim -- --seed S` replays one. Exits 1 when any seed fails.
import { parseArgs } from 'node:util';
import { formatRun, RUN_SETTINGS_DEFAULT, runSeed, type RunSettings } from './seeded-run';

const USAGE = `Usage: npm run sim -- [--seeds N] [--from S] [--seed S] [--ticks T] [--trace] [--stop]
  --seeds N   number of seeds to run (default 100)
  --from S    first seed of the range (default 1)
  --seed S    replay one seed and print its trace tail, even when it passes
  --ticks T   ticks of faults before healing, per seed (default ${RUN_SETTINGS_DEFAULT.chaosTicks})
  --trace     print every trace line while running (use with --seed)
  --stop      stop at the first failing seed`;

interface CliOptions {
  readonly from: number;
  readonly count: number;
  readonly replay: boolean;
  readonly settings: RunSettings;
  readonly stopAtFailure: boolean;
}

function parseCount(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`invalid --${flag} ${JSON.stringify(text)}: expected a non-negative integer`);
  }
  return value;
}

function parseOptions(argv: readonly string[]): CliOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seeds: { type: 'string' },
      from: { type: 'string' },
      seed: { type: 'string' },
      ticks: { type: 'string' },
      trace: { type: 'boolean', default: false },
      stop: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const replay = values.seed !== undefined;
  const settings: RunSettings = {
    ...RUN_SETTINGS_DEFAULT,
    chaosTicks: parseCount('ticks', values.ticks, RUN_SETTINGS_DEFAULT.chaosTicks),
    echoTrace: values.trace === true ? (line: string) => process.stdout.write(`${line}\n`) : undefined,
  };
  return {
    from: replay ? parseCount('seed', values.seed, 1) : parseCount('from', values.from, 1),
    count: replay ? 1 : parseCount('seeds', values.seeds, 100),
    replay,
    settings,
    stopAtFailure: values.stop === true,
  };
}

function main(): number {
  let options: CliOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    return 2;
  }
  const started = Date.now();
  const failed: number[] = [];
  let runCount = 0;
  for (let seed = options.from; seed < options.from + options.count; seed += 1) {
    const result = runSeed(seed, options.settings);
    runCount += 1;
    if (!result.ok || options.replay) process.stdout.write(`${formatRun(result)}\n`);
    if (!result.ok) failed.push(seed);
    if (!result.ok && options.stopAtFailure) break;
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary = failed.length === 0 ? 'all passed' : `failed seeds: ${failed.join(' ')}`;
  process.stdout.write(`${runCount} seeds from ${options.from} in ${seconds} s: ${summary}\n`);
  return failed.length === 0 ? 0 : 1;
}

// A closed pipe (`| head`) ends the output quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});
process.exitCode = main();
