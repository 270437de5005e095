import { format } from 'node:util';
import * as v8 from 'node:v8';
import * as grpc from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import { memberFlags, parseMemberConfig, stopOnStdinCloseVariable, UsageError } from '../node/config';
import { runMember } from '../node/run-member';

export function nodeHelp(): string {
  const lines = memberFlags.map((f) => {
    const suffix = f.default === undefined ? '' : ` (default ${f.default})`;
    const env = f.boolean ? `${f.env}=1` : f.env;
    return `  --${f.name.padEnd(24)} ${env.padEnd(30)} ${f.help}${suffix}`;
  });
  return [
    'replog node: run one cluster member until SIGINT or SIGTERM',
    '',
    'Every flag may instead be set by its environment variable.',
    '',
    `  ${'flag'.padEnd(26)} ${'environment'.padEnd(30)} meaning`,
    ...lines,
  ].join('\n');
}

/** Old-generation growth allowed between full collections, in percent of the live size. */
const heapGrowingPercent = 100;

/**
 * Caps V8's heap growth, which otherwise took a loaded member past 256 MB of
 * RSS (BENCHMARKS.md). V8 reads the flag at each collection, and a value given to node wins.
 */
function limitHeapGrowth(): void {
  const setByUser = [...process.execArgv, process.env['NODE_OPTIONS'] ?? ''].some((arg) => arg.includes('heap-growing-percent'));
  if (!setByUser) v8.setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`);
}

/** `replog node`: starts a member; resolves with the exit code once a signal or a failed write stops it. */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(nodeHelp());
    return 0;
  }
  let config;
  try {
    config = parseMemberConfig(argv, process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`replog node: ${err.message}\nRun "replog node --help" for the flags.`);
      return 2;
    }
    throw err;
  }
  limitHeapGrowth();
  const logger = pino({ level: config.logLevel, base: { memberId: config.id } });
  routeGrpcLog(logger);
  let running;
  try {
    running = await runMember(config, logger);
  } catch (err) {
    console.error(`replog node: ${startFailure(err, config.dataDir)}`);
    return 1;
  }
  const { log } = running;
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      running.stop().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'signal received');
      stop();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // A closed terminal sends SIGHUP, and the member stops cleanly then too.
    process.once('SIGHUP', onSignal);
    if (process.env[stopOnStdinCloseVariable] === '1') {
      process.stdin.once('close', () => {
        log.info({ variable: stopOnStdinCloseVariable }, 'stdin closed, stopping the member');
        stop();
      });
      process.stdin.resume();
    }
    // The member stopped itself after a failed write or Ready. It logged why,
    // and stderr gets the same in one line with what to do next.
    running.member.once('fatal', (cause: unknown, file: string | null) => {
      console.error(`replog node: ${fatalMessage(cause, file)}`);
      running.stop().then(
        () => resolve(1),
        () => resolve(1),
      );
    });
  });
}

/** Returns why a running member stopped itself, and what to do next, for stderr. */
export function fatalMessage(cause: unknown, file: string | null): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  if (file === null) {
    return `the member stopped after an internal error: ${message}. The log has the details; start it again with the same flags.`;
  }
  return (
    `writing to disk failed: ${message} (${file}), so the member stopped. ` +
    'Free space or fix the disk, then start it again with the same flags: it catches up from its log and the leader.'
  );
}

/** File system errors that mean the data folder cannot be created or written. */
const dataFolderErrorCodes = new Set(['ENOTDIR', 'EEXIST', 'EACCES', 'EPERM', 'EROFS', 'SQLITE_CANTOPEN', 'SQLITE_READONLY']);

/** Describes why the member could not start, naming --data when the folder is the cause. */
function startFailure(err: unknown, dataDir: string): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  // ENOENT from mkdir: a file system that takes no new folders there, such as /proc.
  const mkdirFailed = code === 'ENOENT' && (err as { syscall?: unknown }).syscall === 'mkdir';
  if ((typeof code === 'string' && dataFolderErrorCodes.has(code)) || mkdirFailed) {
    return `cannot use --data ${dataDir} (${message}); pick a folder this user can create and write`;
  }
  return message;
}

/**
 * Sends grpc-js's own log lines (errors by default, more with GRPC_VERBOSITY)
 * to the member's log as JSON at warn level, so that stderr carries only
 * replog's lines and the log file stays parseable.
 */
function routeGrpcLog(log: Logger): void {
  const grpcLog = log.child({ component: 'grpc-js' });
  const write = (...args: unknown[]): void => grpcLog.warn(format(...args));
  grpc.setLogger({ error: write, info: write, debug: write });
}
