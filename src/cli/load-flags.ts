import { randomBytes } from 'node:crypto';
import {
  FlagError,
  parseIntegerFlag,
  parsePidListFlag,
  parseTargetFlag,
} from './client-flags';

/** Flags that `replog bench` and the etcd load client share. */
export const loadFlagOptions = {
  target: { type: 'string' },
  concurrency: { type: 'string' },
  rate: { type: 'string' },
  'warmup-s': { type: 'string' },
  'duration-s': { type: 'string' },
  'value-bytes': { type: 'string' },
  'value-order': { type: 'string' },
  'deadline-ms': { type: 'string' },
  pids: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const loadDefaults = {
  concurrency: 64,
  ratePerSecond: 0,
  warmupS: 2,
  durationS: 10,
  valueBytes: 100,
  deadlineMs: 5_000,
} as const;

const concurrencyMax = 100_000;
const ratePerSecondMax = 10_000_000;
const secondsMax = 86_400;
const valueBytesMax = 65_536;
const deadlineMsMax = 3_600_000;

/**
 * Order of the unique values. A `sequential` value extends the previous
 * one's prefix, so an index on them grows at its end. A `random` value
 * starts with 16 random hex digits, as hashes and random ids do, so it lands
 * anywhere in such an index.
 */
export type ValueOrder = 'sequential' | 'random';

const valueOrders: readonly ValueOrder[] = ['sequential', 'random'];

/** Validated shared load flags. */
export interface LoadFlags {
  readonly target: string;
  readonly concurrency: number;
  readonly ratePerSecond: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly valueBytes: number;
  readonly valueOrder: ValueOrder;
  readonly deadlineMs: number;
  readonly pids: readonly number[];
  readonly json: boolean;
}

type LoadFlagValues = { readonly [Name in keyof typeof loadFlagOptions]?: string | boolean };

/** Check the shared flags parsed with {@link loadFlagOptions}. Throws FlagError. */
export function readLoadFlags(values: LoadFlagValues): LoadFlags {
  const text = (name: keyof typeof loadFlagOptions): string | undefined => {
    const value = values[name];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    target: parseTargetFlag('target', text('target')),
    concurrency: parseIntegerFlag('concurrency', text('concurrency'), loadDefaults.concurrency, 1, concurrencyMax),
    ratePerSecond: parseIntegerFlag('rate', text('rate'), loadDefaults.ratePerSecond, 0, ratePerSecondMax),
    warmupS: parseIntegerFlag('warmup-s', text('warmup-s'), loadDefaults.warmupS, 0, secondsMax),
    durationS: parseIntegerFlag('duration-s', text('duration-s'), loadDefaults.durationS, 1, secondsMax),
    valueBytes: parseIntegerFlag('value-bytes', text('value-bytes'), loadDefaults.valueBytes, 1, valueBytesMax),
    valueOrder: parseValueOrder(text('value-order')),
    deadlineMs: parseIntegerFlag('deadline-ms', text('deadline-ms'), loadDefaults.deadlineMs, 1, deadlineMsMax),
    pids: parsePidListFlag('pids', text('pids')),
    json: values.json === true,
  };
}

function parseValueOrder(text: string | undefined): ValueOrder {
  if (text === undefined) return 'sequential';
  const order = valueOrders.find((name) => name === text);
  if (order === undefined) throw new FlagError(`invalid --value-order ${JSON.stringify(text)}: expected sequential or random`);
  return order;
}

/** Help lines of the shared flags. */
export const loadFlagsHelp = `  --target HOST:PORT[,...]  where to send; several IP addresses are used round robin (required)
  --concurrency N           requests in flight in unary mode (default ${loadDefaults.concurrency})
  --rate N                  offered load in messages/s, 0 = as fast as replies allow
                            (default ${loadDefaults.ratePerSecond}); with N > 0 latency counts from the
                            scheduled send time (coordinated omission correction)
  --warmup-s N              seconds of load before measuring (default ${loadDefaults.warmupS})
  --duration-s N            seconds measured (default ${loadDefaults.durationS})
  --value-bytes N           size of each value in bytes, padded; a value is never shorter
                            than its unique key (default ${loadDefaults.valueBytes})
  --value-order ORDER       sequential: each value extends the previous one's prefix;
                            random: each starts with 16 random hex digits (default
                            sequential)
  --deadline-ms N           deadline of one request in ms (default ${loadDefaults.deadlineMs})
  --pids PID[,PID...]       also report the CPU these processes used while measured
                            and their peak RSS since they started
  --json                    print the result as JSON
  -h, --help                show this help
`;

/**
 * Return a function that makes the unique value of request `sequence`: a
 * random run prefix, the sequence number, and padding up to `valueBytes`.
 */
export function uniqueValueMaker(valueBytes: number, order: ValueOrder = 'sequential'): (sequence: number) => string {
  const runPrefix = `bench-${randomBytes(6).toString('hex')}-`;
  if (order === 'sequential') return (sequence) => `${runPrefix}${sequence}-`.padEnd(valueBytes, 'x');
  // The sequence number keeps each value unique, so the random digits need
  // not be: xorshift32 is enough, and cheaper per value than crypto.
  let state = randomBytes(4).readUInt32BE(0) | 1;
  const nextWord = (): string => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0).toString(16).padStart(8, '0');
  };
  return (sequence) => `${nextWord()}${nextWord()}-${runPrefix}${sequence}-`.padEnd(valueBytes, 'x');
}
