// Measures how long taking one snapshot blocks the event loop and slows the
// Raft log's fsyncs. It fills a message store and flushes it to disk, as the
// periodic checkpoints of a running member do. Then it takes a snapshot while
// small batches keep being applied, a timer every millisecond records the
// longest gap between its runs, and a probe appends to a file and fsyncs it.
//   node dist/bench/snapshot-stall.js --messages 1000000 --rounds 3
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseFlags, parseIntegerFlag, FlagError, invalidFlagsExitCode } from '../src/cli/client-flags';
import { EntryType } from '../src/consensus/types';
import type { Entry } from '../src/consensus/types';
import { encodeMessage } from '../src/storage/codec';
import { MessageStore } from '../src/storage/message-store';

const messagesDefault = 1_000_000;
const messagesMax = 20_000_000;
const roundsDefault = 3;
const roundsMax = 20;
const fillBatch = 1000;
/** Messages applied every 10 ms during the snapshot: 2,000 a second. */
const loadBatch = 20;
const loadIntervalMs = 10;

const usage = `Usage: node dist/bench/snapshot-stall.js [flags]

Fills a message store, then takes snapshots while applying 2,000 messages a
second, and prints per round the snapshot time, its CPU time and the longest
event loop gap.

  --messages N   messages in the store (default ${messagesDefault})
  --rounds N     snapshots taken, each in a fresh store (default ${roundsDefault})
  --dir PATH     parent of the temp folders (default: the OS temp folder)
`;

function entryFor(index: number): Entry {
  const valueset = `stall-${index}-`.padEnd(80, 'x');
  return { index, term: 1, type: EntryType.Normal, data: encodeMessage({ valueset, receivedAtMs: 1_700_000_000_000 + index }) };
}

function applyRange(store: MessageStore, first: number, count: number): void {
  const entries: Entry[] = [];
  for (let index = first; index < first + count; index++) entries.push(entryFor(index));
  store.apply(entries);
}

interface Round {
  readonly snapshotMs: number;
  readonly cpuMs: number;
  readonly maxGapMs: number;
  readonly bytes: number;
  /** Durations of the log fsyncs that ran during the snapshot, in ms. */
  readonly fsyncMs: readonly number[];
}

/** Bytes a log write adds before each fsync of the probe: about one batch of entries. */
const probeWriteBytes = 2048;

/**
 * Appends to a file next to the store and fdatasyncs it on the thread pool in
 * a loop, as the Raft log does under load, and records each fsync's duration
 * until stop() is called. It shows how much the snapshot's copy slows the
 * log's fsyncs on the same disk.
 */
function startFsyncProbe(dir: string): { stop(): Promise<number[]> } {
  const fd = fs.openSync(path.join(dir, 'probe.log'), 'a');
  const block = Buffer.alloc(probeWriteBytes, 1);
  const durations: number[] = [];
  let stopped = false;
  let closed = false;
  const loop = (async () => {
    while (!stopped) {
      fs.writeSync(fd, block);
      const started = performance.now();
      await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
      durations.push(performance.now() - started);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      if (!closed) fs.closeSync(fd);
      closed = true;
      return durations;
    },
  };
}

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

async function runRound(messages: number, parentDir: string): Promise<Round> {
  const dir = fs.mkdtempSync(path.join(parentDir, 'replog-snapshot-stall-'));
  const store = MessageStore.open(dir);
  try {
    for (let first = 1; first <= messages; first += fillBatch) {
      applyRange(store, first, Math.min(fillBatch, messages - first + 1));
    }
    execFileSync('sync');
    let next = messages + 1;
    let maxGapMs = 0;
    let last = performance.now();
    const gapTimer = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
    }, 1);
    const loadTimer = setInterval(() => {
      applyRange(store, next, loadBatch);
      next += loadBatch;
    }, loadIntervalMs);
    const probe = startFsyncProbe(dir);
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    try {
      const snapshot = await store.saveSnapshot();
      const cpu = process.cpuUsage(cpuBefore);
      const snapshotMs = performance.now() - started;
      return { snapshotMs, cpuMs: (cpu.user + cpu.system) / 1000, maxGapMs, bytes: snapshot.bytes, fsyncMs: await probe.stop() };
    } finally {
      clearInterval(gapTimer);
      clearInterval(loadTimer);
      await probe.stop();
    }
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let messages: number;
  let rounds: number;
  let parentDir: string;
  try {
    const values = parseFlags(process.argv.slice(2), {
      messages: { type: 'string' },
      rounds: { type: 'string' },
      dir: { type: 'string' },
      help: { type: 'boolean' },
    });
    if (values.help === true) {
      process.stdout.write(usage);
      return;
    }
    messages = parseIntegerFlag('messages', values.messages, messagesDefault, 1, messagesMax);
    rounds = parseIntegerFlag('rounds', values.rounds, roundsDefault, 1, roundsMax);
    parentDir = values.dir ?? os.tmpdir();
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    process.stderr.write(`${err.message}\n\n${usage}`);
    process.exitCode = invalidFlagsExitCode;
    return;
  }
  for (let round = 1; round <= rounds; round++) {
    const result = await runRound(messages, parentDir);
    const fsyncs = [...result.fsyncMs].sort((a, b) => a - b);
    process.stdout.write(
      `round ${round}: ${messages} messages, snapshot ${(result.bytes / 1048576).toFixed(1)} MiB in ` +
        `${result.snapshotMs.toFixed(0)} ms, CPU ${result.cpuMs.toFixed(0)} ms, ` +
        `longest event loop gap ${result.maxGapMs.toFixed(1)} ms; ` +
        `${fsyncs.length} log fsyncs meanwhile, p50 ${percentile(fsyncs, 0.5).toFixed(1)} ms, ` +
        `p99 ${percentile(fsyncs, 0.99).toFixed(1)} ms, max ${percentile(fsyncs, 1).toFixed(1)} ms\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`snapshot-stall failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
