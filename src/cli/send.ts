import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as cliProgress from 'cli-progress';
import { IngestError, isRetryableAppendError } from '../client/errors';
import { connectIngest } from '../client/ingest-client';
import { appendWithRetry, retryPolicyDefaults, type RetryPolicy } from '../client/retry';
import { AppendStreamPool } from '../client/stream-pool';
import type { AppendResult } from '../client/types';
import { connectFailureMessage, refusedTargetMessage } from './connect-failure';
import {
  FlagError,
  parseFlags,
  parseIntegerFlag,
  parseTargetFlag,
  processIo,
  runCommand,
  type CliIo,
} from './client-flags';
import { errors } from '../grpc/errors';
import { oversizeValuesetBytes, valuesetBytesMax } from '../storage/codec';
import { countNoun } from './count-noun';
import { interruptedExitCode, watchInterrupt } from './interrupt';
import { OutageNotice } from './outage-notice';
import { SendTally, formatSendSummary, summarizeSend, type StdinLine } from './send-summary';

export const sendDefaults = {
  concurrency: 16,
  deadlineMs: 5_000,
  retries: retryPolicyDefaults.retriesMax,
} as const;

const countMax = 1_000_000_000;
const concurrencyMax = 10_000;
const deadlineMsMax = 3_600_000;
const retriesMax = 100;

export const sendHelp = `Usage: replog send --target HOST:PORT[,HOST:PORT...] [flags]

Append valuesets: one per stdin line (empty lines are skipped), or --count
generated unique ones. A valueset is 1 to 65,536 bytes of UTF-8; a longer one
fails with INVALID_ARGUMENT, and the summary names the stdin line of the first
one. Ctrl-C (SIGINT) or SIGTERM stops sending, waits up to --deadline-ms for
the appends in flight and prints the summary so far; a second Ctrl-C exits at
once. Exit status 0 when every append was acknowledged, 1 when any failed, 2
for invalid flags, 130 when interrupted. When as many appends in a row as
--concurrency fail after their retries with UNAVAILABLE or DEADLINE_EXCEEDED,
a line on stderr says so, and again every 10 s while they go on failing.

  --target HOST:PORT[,...]  members or load balancer; several IP addresses are
                            used round robin (required)
  --count N                 send N generated valuesets "<prefix><n>" instead of stdin
  --prefix STR              prepended to every valueset, at most ${valuesetBytesMax - 1} UTF-8 bytes
                            (generated default: "send-<random hex>-", stdin default: none)
  --concurrency N           appends in flight (default ${sendDefaults.concurrency}). Above 1, valuesets may
                            be stored in another order than read; 1 keeps the
                            order, because each append waits for the one before
  --stream                  pipeline appends over one AppendStream call
  --deadline-ms N           time budget of one attempt, in ms (default ${sendDefaults.deadlineMs})
  --retries N               retries of UNAVAILABLE, DEADLINE_EXCEEDED and overload
                            (RESOURCE_EXHAUSTED with a requested pause), each after a random
                            pause of 50-100 ms that doubles per retry up to 1-2 s and is at
                            least what the member requests (default ${sendDefaults.retries})
  --json                    print the summary as JSON
  -h, --help                show this help
`;

/** Validated flags of `replog send`. */
export interface SendFlags {
  readonly target: string;
  /** Generated valuesets to send; null = read stdin. */
  readonly count: number | null;
  readonly prefix: string | null;
  readonly concurrency: number;
  readonly stream: boolean;
  readonly deadlineMs: number;
  readonly retryPolicy: RetryPolicy;
  readonly json: boolean;
}

/** Parse and check the flags; returns null for `--help`. Throws FlagError. */
export function parseSendFlags(argv: readonly string[]): SendFlags | null {
  const values = parseFlags(argv, {
    target: { type: 'string' },
    count: { type: 'string' },
    prefix: { type: 'string' },
    concurrency: { type: 'string' },
    stream: { type: 'boolean' },
    'deadline-ms': { type: 'string' },
    retries: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return null;
  const count = values.count === undefined ? null : parseIntegerFlag('count', values.count, 0, 1, countMax);
  const retries = parseIntegerFlag('retries', values.retries, sendDefaults.retries, 0, retriesMax);
  return {
    target: parseTargetFlag('target', values.target),
    count,
    prefix: checkPrefix(values.prefix, count),
    concurrency: parseIntegerFlag('concurrency', values.concurrency, sendDefaults.concurrency, 1, concurrencyMax),
    stream: values.stream ?? false,
    deadlineMs: parseIntegerFlag('deadline-ms', values['deadline-ms'], sendDefaults.deadlineMs, 1, deadlineMsMax),
    retryPolicy: { ...retryPolicyDefaults, retriesMax: retries },
    json: values.json ?? false,
  };
}

/**
 * Rejects a --prefix that leaves no room in a valueset: every valueset adds at
 * least one byte to the prefix (a stdin line is not empty, a number is a digit).
 * With --count, the prefix must leave room for the digits of the largest number.
 */
function checkPrefix(prefix: string | undefined, count: number | null): string | null {
  if (prefix === undefined) return null;
  const bytes = Buffer.byteLength(prefix, 'utf8');
  if (bytes >= valuesetBytesMax) {
    throw new FlagError(
      `invalid --prefix: ${bytes} UTF-8 bytes; expected at most ${valuesetBytesMax - 1}, because a valueset ` +
        `is at most ${valuesetBytesMax} UTF-8 bytes and the prefix is followed by at least one byte`,
    );
  }
  const digits = count === null ? 1 : String(count).length;
  if (bytes + digits > valuesetBytesMax) {
    throw new FlagError(
      `invalid --prefix: ${bytes} UTF-8 bytes; expected at most ${valuesetBytesMax - digits} with --count ${count}, ` +
        `because the numbers up to ${count} add ${digits} bytes and a valueset is at most ${valuesetBytesMax} UTF-8 bytes`,
    );
  }
  return prefix;
}

/** `replog send`: returns the exit status. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  return runCommand('replog send', io, async () => {
    const flags = parseSendFlags(argv);
    if (flags === null) {
      io.stdout.write(sendHelp);
      return 0;
    }
    return send(flags, io);
  });
}

/** One attempt to append a valueset, by unary call or over an AppendStream. */
interface Appender {
  append(valueset: string): Promise<AppendResult>;
  /** Waits for the replies still due on the AppendStream, and does nothing with unary calls. */
  drain(): Promise<void>;
  close(): void;
}

async function connectAppender(flags: SendFlags): Promise<Appender> {
  const refusal = await refusedTargetMessage(flags.target);
  if (refusal !== null) throw new Error(refusal);
  const client = connectIngest(flags.target);
  // Fail fast on a wrong address instead of retrying every valueset.
  await client.waitForReady(flags.deadlineMs).catch(async () => {
    client.close();
    throw new Error(await connectFailureMessage(flags.target, flags.deadlineMs));
  });
  const pool = flags.stream
    ? new AppendStreamPool(client, 1, { windowSize: flags.concurrency, replyTimeoutMs: flags.deadlineMs })
    : null;
  return {
    append: (valueset) => (pool ? pool.append(0, valueset) : client.append(valueset, flags.deadlineMs)),
    drain: async () => pool?.close(),
    close: () => client.close(),
  };
}

async function send(flags: SendFlags, io: CliIo): Promise<number> {
  // Nothing is sent before the connection is ready, so a signal then exits at once.
  const connecting = watchInterrupt({
    onFirst: (signal) => {
      io.stderr.write(`replog send: ${signal} while connecting to --target ${flags.target}: nothing was sent\n`);
      process.exit(interruptedExitCode);
    },
  });
  let appender: Appender;
  try {
    appender = await connectAppender(flags);
  } finally {
    connecting.dispose();
  }
  const tally = new SendTally();
  const progress = startProgress(flags, io, tally);
  const interrupt = watchInterrupt({
    onFirst: (signal) => {
      progress.stop();
      io.stderr.write(interruptNotice(signal, tally.sent - tally.finished, flags.deadlineMs));
    },
    onExit: (signal) => io.stderr.write(`replog send: ${signal} again: exiting without waiting for the appends in flight\n`),
  });
  const appendRetrying = async (valueset: string): Promise<{ result: AppendResult; retried: boolean }> => {
    let retried = false;
    const onRetry = (): void => {
      tally.retries += 1;
      retried = true;
    };
    const oversize = oversizeValuesetError(valueset);
    if (oversize !== null) throw oversize;
    const result = await appendWithRetry(() => appender.append(valueset), flags.retryPolicy, onRetry, interrupt.signal);
    return { result, retried };
  };
  const source = valuesetSource(flags, io, interrupt.signal);
  // On a terminal the line starts by clearing the progress bar, which the next update draws again.
  const outage = new OutageNotice(flags.concurrency, (line) => io.stderr.write(io.stderr.isTTY ? `\r\x1b[K${line}` : line));
  const startMs = performance.now();
  try {
    const sending = (async () => {
      const workers = Array.from({ length: flags.concurrency }, () =>
        sendWorker(source, appendRetrying, { tally, progress, outage }, interrupt.signal),
      );
      await Promise.all(workers);
      await appender.drain();
    })();
    await waitUnlessInterrupted(sending, interrupt.signal, flags.deadlineMs);
  } finally {
    interrupt.dispose();
    progress.stop();
    appender.close();
  }
  const summary = summarizeSend(tally, performance.now() - startMs, interrupt.received);
  io.stdout.write(flags.json ? `${JSON.stringify(summary)}\n` : formatSendSummary(summary));
  if (interrupt.received !== null) return interruptedExitCode;
  return summary.errorCount === 0 ? 0 : 1;
}

/**
 * Returns the INVALID_ARGUMENT error that a member gives a valueset over the
 * size limit, or null, without sending it. A request over gRPC's 1 MiB
 * message limit would end an AppendStream, failing the appends on it too.
 */
function oversizeValuesetError(valueset: string): IngestError | null {
  const bytes = oversizeValuesetBytes(valueset);
  if (bytes === null) return null;
  return new IngestError(grpc.status.INVALID_ARGUMENT, errors.valuesetTooLong(bytes, valuesetBytesMax).message);
}

/** Returns the stderr line printed on the first SIGINT or SIGTERM. */
function interruptNotice(signal: NodeJS.Signals, inFlight: number, waitMs: number): string {
  if (inFlight === 0) return `replog send: ${signal}: sending no more valuesets\n`;
  return (
    `replog send: ${signal}: sending no more valuesets; waiting up to ${waitMs} ms (--deadline-ms) ` +
    `for ${countNoun(inFlight, 'append')} in flight. Press Ctrl-C again to exit at once.\n`
  );
}

/**
 * Waits for `work`, but once `signal` is aborted at most `waitMs` more: the
 * deadline of one attempt, within which the appends in flight get a reply or
 * fail. Work still running then is left behind, and the process exits soon.
 */
async function waitUnlessInterrupted(work: Promise<void>, signal: AbortSignal, waitMs: number): Promise<void> {
  // The work may fail after the wait ended, when the race below no longer awaits it.
  work.catch(() => undefined);
  const waitEnded = new AbortController();
  const waitAfterInterrupt = new Promise<void>((resolve) => {
    const startWait = (): void => {
      sleep(waitMs, undefined, { signal: waitEnded.signal }).then(resolve, () => undefined);
    };
    if (signal.aborted) startWait();
    else signal.addEventListener('abort', startWait, { once: true, signal: waitEnded.signal });
  });
  try {
    await Promise.race([work, waitAfterInterrupt]);
  } finally {
    waitEnded.abort();
  }
}

/** Recorders of each append's outcome, shared by the workers. */
interface SendReports {
  readonly tally: SendTally;
  readonly progress: Progress;
  readonly outage: OutageNotice;
}

async function sendWorker(
  source: AsyncIterator<SendItem>,
  append: (valueset: string) => Promise<{ result: AppendResult; retried: boolean }>,
  { tally, progress, outage }: SendReports,
  stop: AbortSignal,
): Promise<void> {
  while (!stop.aborted) {
    const next = await source.next();
    if (next.done || stop.aborted) return;
    tally.sent += 1;
    try {
      const { result, retried } = await append(next.value.valueset);
      tally.recordResult(result, retried);
      outage.succeeded();
    } catch (error) {
      // After an interrupt no append is retried, so one that failed with
      // UNAVAILABLE, DEADLINE_EXCEEDED or overload stays unanswered. It may be stored.
      if (!(stop.aborted && isRetryableAppendError(error))) {
        tally.recordError(error, next.value.line);
        outage.failed(error);
      }
    }
    progress.update();
  }
}

/** One valueset to send, with the stdin line it was made from (null for --count). */
interface SendItem {
  readonly valueset: string;
  readonly line: StdinLine | null;
}

/**
 * The valuesets to send, shared by all workers: an async generator queues
 * concurrent `next()` calls, so each valueset goes to exactly one worker.
 * It ends early once `stop` is aborted, also while it waits for stdin.
 */
async function* valuesetSource(flags: SendFlags, io: CliIo, stop: AbortSignal): AsyncGenerator<SendItem> {
  if (flags.count !== null) {
    const prefix = flags.prefix ?? `send-${randomBytes(4).toString('hex')}-`;
    for (let n = 1; n <= flags.count && !stop.aborted; n += 1) yield { valueset: `${prefix}${n}`, line: null };
    return;
  }
  const prefix = flags.prefix ?? '';
  if ((io.stdin as { isTTY?: boolean }).isTTY) {
    io.stderr.write('Reading valuesets from stdin, one per line; end with Ctrl-D.\n');
  }
  // The abort closes the interface, which ends the loop below.
  const lines = readline.createInterface({ input: io.stdin, crlfDelay: Infinity, signal: stop });
  let number = 0;
  for await (const text of lines) {
    number += 1;
    // Lines read before the abort may still be buffered.
    if (stop.aborted) return;
    if (text !== '') yield { valueset: `${prefix}${text}`, line: { number, text } };
  }
}

interface Progress {
  update(): void;
  stop(): void;
}

/** Start a progress bar on stderr when stderr is a terminal; otherwise return a no-op. */
function startProgress(flags: SendFlags, io: CliIo, tally: SendTally): Progress {
  if (!io.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const known = flags.count !== null;
  const format = known
    ? 'send [{bar}] {percentage}% | {value}/{total} | {errors} errors'
    : 'send {value} finished | {errors} errors';
  const bar = new cliProgress.SingleBar(
    { stream: io.stderr, format, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(flags.count ?? 0, 0, { errors: 0 });
  return {
    update: () => bar.update(tally.finished, { errors: tally.errorCount }),
    stop: () => bar.stop(),
  };
}
