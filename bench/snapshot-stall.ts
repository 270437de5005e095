// Measures how long taking one snapshot blocks the event loop. It fills a
// message store, flushes it to disk (as the periodic checkpoints of a running
// member do), then takes a snapshot while a timer every millisecond records
// the longest gap between its runs and small batches keep being applied.
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
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    try {
      const snapshot = await store.saveSnapshot();
      const cpu = process.cpuUsage(cpuBefore);
      return {
        snapshotMs: performance.now() - started,
        cpuMs: (cpu.user + cpu.system) / 1000,
        maxGapMs,
        bytes: snapshot.bytes,
      };
    } finally {
      clearInterval(gapTimer);
      clearInterval(loadTimer);
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
    process.stdout.write(
      `round ${round}: ${messages} messages, snapshot ${(result.bytes / 1048576).toFixed(1)} MiB in ` +
        `${result.snapshotMs.toFixed(0)} ms, CPU ${result.cpuMs.toFixed(0)} ms, ` +
        `longest event loop gap ${result.maxGapMs.toFixed(1)} ms\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`snapshot-stall failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
