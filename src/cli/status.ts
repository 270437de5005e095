import { setTimeout as sleep } from 'node:timers/promises';
import {
  FlagError,
  parseFlags,
  parseIntegerFlag,
  processIo,
  runCommand,
  withFlagName,
  type CliIo,
} from './client-flags';
import { fetchMemberStatus, parseHttpAddressList } from './status-fetch';
import {
  allInSync,
  assessSync,
  formatStatusTable,
  formatSyncState,
  type MemberProbe,
} from './status-table';

/** Time limit for one member's reply to `GET /status`. */
export const statusFetchTimeoutMs = 2_000;
const watchSecondsMax = 3_600;

export const statusHelp = `Usage: replog status --http HOST:PORT[,HOST:PORT...] [flags]

Fetch every member's GET /status and print one table. "in sync" compares each
member with the one that applied the most entries: yes, behind N (entries),
DIFFERS (same applied index, other message count or digest), down, SAME ID as
ADDRESS (two addresses returned one member id: they belong to different
clusters, or name one member twice), or LISTED TWICE (one address given twice).
Exit status 0 when every member returned its status and is in sync, 1 otherwise.

  --http HOST:PORT[,...]  the members' HTTP (status) addresses (required); each
                          may also be written http://HOST:PORT[/status]
  --json                  print the members' status bodies and sync states as JSON
  --watch SECONDS         refresh every SECONDS seconds until interrupted
  -h, --help              show this help
`;

/** Validated flags of `replog status`. */
export interface StatusFlags {
  readonly addresses: readonly string[];
  readonly json: boolean;
  /** Refresh period; null = print once. */
  readonly watchSeconds: number | null;
}

/** Parse and check the flags; returns null for `--help`. Throws FlagError. */
export function parseStatusFlags(argv: readonly string[]): StatusFlags | null {
  const values = parseFlags(argv, {
    http: { type: 'string' },
    json: { type: 'boolean' },
    watch: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return null;
  if (values.http === undefined) throw new FlagError('missing --http: expected HOST:PORT[,HOST:PORT...]');
  const httpText = values.http;
  const addresses = withFlagName('http', () => parseHttpAddressList(httpText));
  const watchSeconds =
    values.watch === undefined ? null : parseIntegerFlag('watch', values.watch, 0, 1, watchSecondsMax);
  return { addresses, json: values.json ?? false, watchSeconds };
}

/** `replog status`: returns the exit status. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  return runCommand('replog status', io, async () => {
    const flags = parseStatusFlags(argv);
    if (flags === null) {
      io.stdout.write(statusHelp);
      return 0;
    }
    return flags.watchSeconds === null ? printStatusOnce(flags, io) : watchStatus(flags, flags.watchSeconds, io);
  });
}

async function printStatusOnce(flags: StatusFlags, io: CliIo): Promise<number> {
  const probes = await Promise.all(flags.addresses.map(probeMember));
  const states = assessSync(probes);
  if (flags.json) {
    const members = probes.map((probe, position) => ({
      ...probe,
      inSync: formatSyncState(states[position] ?? { kind: 'down' }),
    }));
    io.stdout.write(`${JSON.stringify({ inSync: allInSync(states), members })}\n`);
  } else {
    io.stdout.write(formatStatusTable(probes, states));
  }
  return allInSync(states) ? 0 : 1;
}

/** Print the table every `periodSeconds` until SIGINT or SIGTERM; returns the last status. */
async function watchStatus(flags: StatusFlags, periodSeconds: number, io: CliIo): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let exitCode = 1;
  try {
    while (!stop.signal.aborted) {
      if ((io.stdout as { isTTY?: boolean }).isTTY) io.stdout.write('\x1b[2J\x1b[H');
      if (!flags.json) io.stdout.write(`${new Date().toISOString()}\n`);
      exitCode = await printStatusOnce(flags, io);
      await sleep(periodSeconds * 1000, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}

/** Fetch and check one member's `/status`; a failure becomes an error probe. */
export async function probeMember(address: string): Promise<MemberProbe> {
  return { address, ...(await fetchMemberStatus(address, statusFetchTimeoutMs)) };
}
