// Micro-benchmark of the storage layer: microseconds per message for persisting
// Raft log entries, loading them back, applying them to the message store, and
// looking up stored and missing valuesets. Wall time includes fsync waits. CPU
// time (user plus system of this process) is what limits a CPU-bound cluster.
// Its system part is mostly the kernel's work for writes and fsyncs.
//   node dist/bench/storage-bench.js --entries 20000 --batch 100
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EntryType } from '../src/consensus/types';
import type { Entry } from '../src/consensus/types';
import {
  parseFlags,
  parseIntegerFlag,
  FlagError,
  invalidFlagsExitCode,
} from '../src/cli/client-flags';
import { encodeMessage } from '../src/storage/codec';
import { MessageStore } from '../src/storage/message-store';
import { SqliteRaftLog } from '../src/storage/raft-log';

const entriesDefault = 20_000;
const batchDefault = 100;
const valuesetBytesDefault = 80;
const roundsDefault = 5;
/** Bounds that keep one run within a few minutes and a few GB of disk. */
const entriesMax = 10_000_000;
const batchMax = 100_000;
const valuesetBytesMax = 65_536;
const roundsMax = 100;

const usage = `Usage: node dist/bench/storage-bench.js [flags]

Prints microseconds per message (wall and CPU) for each storage operation,
the median over --rounds rounds, each in a fresh temp folder.

  --entries N          messages per round (default ${entriesDefault})
  --batch N            entries per persist() and per apply() (default ${batchDefault})
  --valueset-bytes N   size of each valueset in UTF-8 bytes (default ${valuesetBytesDefault})
  --rounds N           rounds; the median is printed (default ${roundsDefault})
  --random             valuesets in random order (a hash of the index) instead of
                       a shared prefix and a sequence number like \`replog bench\`
  --dir PATH           parent of the temp folders (default: the OS temp folder)
`;

interface BenchFlags {
  readonly entries: number;
  readonly batch: number;
  readonly valuesetBytes: number;
  readonly rounds: number;
  readonly random: boolean;
  readonly parentDir: string;
}

/** Microseconds per message of one operation in one round. */
interface Sample {
  readonly wallUs: number;
  readonly cpuUs: number;
  readonly systemUs: number;
}

const operations = ['persist', 'load', 'apply', 'lookup hit', 'lookup miss'] as const;

function readFlags(argv: readonly string[]): BenchFlags | null {
  const values = parseFlags(argv, {
    entries: { type: 'string' },
    batch: { type: 'string' },
    'valueset-bytes': { type: 'string' },
    rounds: { type: 'string' },
    dir: { type: 'string' },
    random: { type: 'boolean' },
    help: { type: 'boolean' },
  });
  if (values.help === true) return null;
  return {
    entries: parseIntegerFlag('entries', values.entries, entriesDefault, 1, entriesMax),
    batch: parseIntegerFlag('batch', values.batch, batchDefault, 1, batchMax),
    valuesetBytes: parseIntegerFlag(
      'valueset-bytes',
      values['valueset-bytes'],
      valuesetBytesDefault,
      1,
      valuesetBytesMax,
    ),
    rounds: parseIntegerFlag('rounds', values.rounds, roundsDefault, 1, roundsMax),
    random: values.random === true,
    parentDir: values.dir ?? os.tmpdir(),
  };
}

/**
 * Returns a unique ASCII valueset for `index`, padded to `bytes`. Sequential
 * valuesets share a prefix, so SQLite's unique index grows at few places;
 * random ones land all over it.
 */
function valuesetFor(index: number, flags: BenchFlags, tag: string): string {
  const key = `${tag}-${index}-`;
  const prefix = flags.random ? createHash('sha256').update(key).digest('hex') + key : key;
  return prefix.padEnd(flags.valuesetBytes, 'x');
}

function makeBatches(flags: BenchFlags): Entry[][] {
  const batches: Entry[][] = [];
  for (let first = 1; first <= flags.entries; first += flags.batch) {
    const last = Math.min(first + flags.batch - 1, flags.entries);
    const batch: Entry[] = [];
    for (let index = first; index <= last; index++) {
      const valueset = valuesetFor(index, flags, 'v');
      const data = encodeMessage({ valueset, receivedAtMs: 1_700_000_000_000 + index });
      batch.push({ index, term: 1, type: EntryType.Normal, data });
    }
    batches.push(batch);
  }
  return batches;
}

/** Runs `work` and returns its wall and CPU time divided by `count`, in µs. */
function measure(count: number, work: () => void): Sample {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  work();
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    wallUs: (wallMs * 1000) / count,
    cpuUs: (cpu.user + cpu.system) / count,
    systemUs: cpu.system / count,
  };
}

/** Returns the samples of persist() and of load() after a reopen. */
function benchRaftLog(dir: string, batches: readonly Entry[][], count: number): Sample[] {
  const log = SqliteRaftLog.open(dir);
  let persist: Sample;
  try {
    persist = measure(count, () => {
      for (const batch of batches) {
        const commit = (batch[0]?.index ?? 1) - 1;
        log.persist(batch, { term: 1, vote: 'n1', commit });
      }
    });
  } finally {
    log.close();
  }
  const reopened = SqliteRaftLog.open(dir);
  try {
    const load = measure(count, () => {
      if (reopened.load().entries.length !== count) throw new Error('load lost entries');
    });
    return [persist, load];
  } finally {
    reopened.close();
  }
}

function benchStore(dir: string, batches: readonly Entry[][], flags: BenchFlags): Sample[] {
  const store = MessageStore.open(dir);
  try {
    const apply = measure(flags.entries, () => {
      for (const batch of batches) store.apply(batch);
    });
    const hits: string[] = [];
    const misses: string[] = [];
    for (let index = 1; index <= flags.entries; index++) {
      hits.push(valuesetFor(index, flags, 'v'));
      misses.push(valuesetFor(index, flags, 'm'));
    }
    const lookupHit = measure(flags.entries, () => lookupAll(store, hits, true));
    const lookupMiss = measure(flags.entries, () => lookupAll(store, misses, false));
    return [apply, lookupHit, lookupMiss];
  } finally {
    store.close();
  }
}

function lookupAll(store: MessageStore, valuesets: readonly string[], stored: boolean): void {
  for (const valueset of valuesets) {
    if ((store.lookup(valueset) !== undefined) !== stored) {
      throw new Error(`lookup of ${valueset} returned the wrong result`);
    }
  }
}

function runRound(flags: BenchFlags): Sample[] {
  const dir = fs.mkdtempSync(path.join(flags.parentDir, 'replog-storage-bench-'));
  try {
    const batches = makeBatches(flags);
    return [...benchRaftLog(dir, batches, flags.entries), ...benchStore(dir, batches, flags)];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle] ?? Number.NaN;
  return ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

function printTable(flags: BenchFlags, rounds: readonly Sample[][]): void {
  console.log(
    `entries ${flags.entries}, batch ${flags.batch}, ` +
      `${flags.random ? 'random' : 'sequential'} valuesets of ${flags.valuesetBytes} bytes, ` +
      `median of ${flags.rounds} rounds`,
  );
  console.log('| operation | wall µs/msg | CPU µs/msg | of which system |');
  console.log('| --- | ---: | ---: | ---: |');
  operations.forEach((operation, i) => {
    const samples = rounds.flatMap((round) => round[i] ?? []);
    const wall = median(samples.map((s) => s.wallUs)).toFixed(2);
    const cpu = median(samples.map((s) => s.cpuUs)).toFixed(2);
    const system = median(samples.map((s) => s.systemUs)).toFixed(2);
    console.log(`| ${operation} | ${wall} | ${cpu} | ${system} |`);
  });
}

function main(): void {
  let flags: BenchFlags | null;
  try {
    flags = readFlags(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    process.stderr.write(`${err.message}\n${usage}`);
    process.exit(invalidFlagsExitCode);
  }
  if (flags === null) {
    process.stdout.write(usage);
    return;
  }
  const rounds: Sample[][] = [];
  for (let round = 0; round < flags.rounds; round++) rounds.push(runRound(flags));
  printTable(flags, rounds);
}

main();
