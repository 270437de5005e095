import { parseArgs } from 'node:util';
import { joinNegativeValues } from '../util/negative-flag-values';
import { valuesetBytesMax } from '../storage/codec';
import { grpcMessageBytesMax } from '../grpc/peer-link';
import { parseArgsMessage } from '../util/parse-args-message';

/** Invalid command-line input; the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface PeerAddress {
  readonly id: string;
  readonly address: string;
}

export interface MemberConfig {
  readonly id: string;
  readonly dataDir: string;
  readonly grpcAddress: string;
  readonly raftAddress: string;
  readonly httpAddress: string;
  readonly peers: readonly PeerAddress[];
  readonly snapshotThreshold: number;
  /** Bounds the log's memory when valuesets are large: 100,000 entries of 64 KiB would be 6 GiB. */
  readonly snapshotThresholdBytes: number;
  /** Entries kept below a snapshot so followers a little behind catch up from the log. */
  readonly snapshotKeepEntries: number;
  readonly tickMs: number;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** Server-side bound on waiting for an append to commit and apply. */
  readonly appendTimeoutMs: number;
  /** Appends accepted but not yet replied to; more are rejected with RESOURCE_EXHAUSTED. */
  readonly pendingAppendsMax: number;
  /** UTF-8 bytes of the valuesets of those appends, past which an append is rejected with RESOURCE_EXHAUSTED. */
  readonly pendingBytesMax: number;
  /** Bytes of client request messages that may be partly received at once, over all calls (see ReceiveBudget). */
  readonly receiveBytesMax: number;
  /** Maximum wait of the leader's queued appends for more to share their Raft round; 0 = no wait. */
  readonly batchDelayMs: number;
  /** Started on an empty folder after losing its data: withhold votes until a leader catches it up. */
  readonly rejoin: boolean;
  readonly logLevel: string;
}

export const memberIdPattern = /^[a-z0-9-]{1,32}$/;

interface FlagSpec {
  readonly name: string;
  readonly env: string;
  readonly help: string;
  readonly default?: string;
  /** Set for a flag without a value. Its variable is 1, true, 0 or false. */
  readonly boolean?: true;
}

/** Flags of `replog node`, with their environment variables; the order is the help order. */
export const memberFlags: readonly FlagSpec[] = [
  { name: 'id', env: 'REPLOG_ID', help: 'member id, [a-z0-9-]{1,32}, unique in the cluster' },
  { name: 'data', env: 'REPLOG_DATA', help: 'data directory, created if missing' },
  { name: 'grpc', env: 'REPLOG_GRPC', help: 'HOST:PORT of the client API (service Ingest)' },
  { name: 'raft', env: 'REPLOG_RAFT', help: 'HOST:PORT for peer traffic (default: the --grpc address)' },
  { name: 'http', env: 'REPLOG_HTTP', help: 'HOST:PORT of /status, /healthz, /readyz and /metrics' },
  { name: 'peers', env: 'REPLOG_PEERS', help: 'ID=HOST:PORT,... every member\'s peer address, this one included' },
  { name: 'snapshot-threshold', env: 'REPLOG_SNAPSHOT_THRESHOLD', help: 'entries applied since the last snapshot that trigger a new one', default: '100000' },
  { name: 'snapshot-threshold-bytes', env: 'REPLOG_SNAPSHOT_THRESHOLD_BYTES', help: 'bytes of entry data applied since the last snapshot that trigger a new one', default: '67108864' },
  { name: 'snapshot-keep-entries', env: 'REPLOG_SNAPSHOT_KEEP_ENTRIES', help: 'log entries kept below a snapshot for followers a little behind', default: '2000' },
  { name: 'tick-ms', env: 'REPLOG_TICK_MS', help: 'length of one Raft tick, in milliseconds', default: '20' },
  { name: 'election-timeout-ms', env: 'REPLOG_ELECTION_TIMEOUT_MS', help: 'minimum election timeout in milliseconds; the actual one is drawn from [T, 2T)', default: '1000' },
  { name: 'heartbeat-interval-ms', env: 'REPLOG_HEARTBEAT_INTERVAL_MS', help: 'leader heartbeat interval in milliseconds', default: '100' },
  { name: 'append-timeout-ms', env: 'REPLOG_APPEND_TIMEOUT_MS', help: 'maximum wait for an append to commit before UNAVAILABLE, in milliseconds', default: '10000' },
  { name: 'pending-appends-max', env: 'REPLOG_PENDING_APPENDS_MAX', help: 'appends in progress on this member before RESOURCE_EXHAUSTED', default: '50000' },
  { name: 'pending-bytes-max', env: 'REPLOG_PENDING_BYTES_MAX', help: 'UTF-8 bytes of the valuesets of the appends in progress on this member before RESOURCE_EXHAUSTED', default: '67108864' },
  { name: 'receive-bytes-max', env: 'REPLOG_RECEIVE_BYTES_MAX', help: 'bytes of Append and AppendStream request messages that this member may have partly received at once, over all calls, before RESOURCE_EXHAUSTED', default: '67108864' },
  { name: 'batch-delay-ms', env: 'REPLOG_BATCH_DELAY_MS', help: 'maximum wait of appends on the leader for more to share one log write, fsync and replication round, in milliseconds; only while appends arrive faster than one per this interval on average; 0 = no wait', default: '2' },
  { name: 'rejoin', env: 'REPLOG_REJOIN', help: 'for a member that lost its data, started on an empty --data folder: it votes and campaigns only once a leader has caught it up', boolean: true },
  { name: 'log-level', env: 'REPLOG_LOG_LEVEL', help: 'pino log level: fatal, error, warn, info, debug, trace or silent', default: 'info' },
];

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * When this variable is 1, the member stops once its stdin closes. `replog
 * cluster` sets it and gives each member a pipe as stdin, which closes when
 * the cluster process ends, even by SIGKILL, so no member outlives it.
 */
export const stopOnStdinCloseVariable = 'REPLOG_STOP_ON_STDIN_CLOSE';

/** Parses `replog node` flags, falling back to REPLOG_* variables; throws UsageError. */
export function parseMemberConfig(argv: readonly string[], env: NodeJS.ProcessEnv): MemberConfig {
  const options = Object.fromEntries(memberFlags.map((f) => [f.name, { type: f.boolean ? ('boolean' as const) : ('string' as const) }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: joinNegativeValues(argv, options), options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(parseArgsMessage(err));
  }
  const fromEnv = new Map<string, string>();
  const isDefault = (name: string): boolean => {
    const spec = memberFlags.find((f) => f.name === name);
    return values[name] === undefined && (spec === undefined || env[spec.env] === undefined);
  };
  const get = (name: string): string | undefined => {
    const spec = memberFlags.find((f) => f.name === name);
    const envValue = spec ? env[spec.env] : undefined;
    if (values[name] === undefined && envValue !== undefined && spec) fromEnv.set(name, spec.env);
    const value = values[name] ?? envValue ?? spec?.default;
    return typeof value === 'string' ? value : undefined;
  };
  const required = (name: string): string => {
    const value = get(name);
    if (value === undefined || value === '') {
      const spec = memberFlags.find((f) => f.name === name);
      throw new UsageError(`missing --${name} (or ${spec?.env ?? ''}): ${spec?.help ?? ''}`);
    }
    return value;
  };
  const isSet = (name: string): boolean => {
    if (values[name] === true) return true;
    const spec = memberFlags.find((f) => f.name === name)!;
    return parseBooleanVariable(spec.env, env[spec.env]);
  };
  try {
    return buildConfig({ get, required, isDefault, isSet });
  } catch (err) {
    throw err instanceof UsageError ? nameEnvSource(err, fromEnv) : err;
  }
}

/**
 * Names the variable in an error about a value that came from the
 * environment, such as "invalid REPLOG_TICK_MS (--tick-ms) ...", so the user
 * looks in the right place.
 */
function nameEnvSource(err: UsageError, fromEnv: ReadonlyMap<string, string>): UsageError {
  const match = /^invalid --([a-z-]+)/.exec(err.message);
  const variable = match ? fromEnv.get(match[1]!) : undefined;
  if (variable === undefined) return err;
  return new UsageError(err.message.replace(`invalid --${match![1]}`, `invalid ${variable} (--${match![1]})`));
}

/** The raw values of the member flags, from the command line, the environment or the defaults. */
interface FlagValues {
  get(name: string): string | undefined;
  /** Returns the value, or throws a UsageError when it is missing or empty. */
  required(name: string): string;
  /** True when neither the flag nor its variable is set, so the value is the default. */
  isDefault(name: string): boolean;
  /** Returns whether a flag without a value is given, on the command line or by its variable. */
  isSet(name: string): boolean;
}

function buildConfig({ get, required, isDefault, isSet }: FlagValues): MemberConfig {
  // An empty --id "" is given, not missing, so the error names what an id may contain.
  if (get('id') === '') {
    throw new UsageError('invalid --id "": the id is empty; expected 1 to 32 characters from a-z, 0-9 and "-" ([a-z0-9-]{1,32}), such as n1');
  }
  const id = required('id');
  if (!memberIdPattern.test(id)) {
    throw new UsageError(`invalid --id ${JSON.stringify(id)}: expected [a-z0-9-]{1,32}`);
  }

  const grpcAddress = parseAddress('grpc', required('grpc'));
  const raftAddress = parseAddress('raft', get('raft') ?? grpcAddress);
  const peers = parsePeers(required('peers'));
  if (!peers.some((p) => p.id === id)) {
    throw new UsageError(`invalid --peers: it must list this member's own id ${JSON.stringify(id)}`);
  }
  const httpAddress = parseAddress('http', required('http'));
  if (httpAddress === grpcAddress || httpAddress === raftAddress) {
    throw new UsageError(`invalid --http ${JSON.stringify(httpAddress)}: it must differ from --grpc and --raft`);
  }

  const config: MemberConfig = {
    id,
    dataDir: required('data'),
    grpcAddress,
    raftAddress,
    httpAddress,
    peers,
    snapshotThreshold: parseInteger('snapshot-threshold', required('snapshot-threshold'), 1, 1e9),
    snapshotThresholdBytes: parseInteger('snapshot-threshold-bytes', required('snapshot-threshold-bytes'), 65536, 2 ** 40),
    snapshotKeepEntries: parseInteger('snapshot-keep-entries', required('snapshot-keep-entries'), 0, 1e9),
    tickMs: parseInteger('tick-ms', required('tick-ms'), 1, 1000),
    electionTimeoutMs: parseInteger('election-timeout-ms', required('election-timeout-ms'), 10, 600_000),
    heartbeatIntervalMs: parseInteger('heartbeat-interval-ms', required('heartbeat-interval-ms'), 1, 60_000),
    appendTimeoutMs: parseInteger('append-timeout-ms', required('append-timeout-ms'), 10, 3_600_000),
    pendingAppendsMax: parseInteger('pending-appends-max', required('pending-appends-max'), 1, 10_000_000),
    // At least one valueset of the largest size must fit.
    pendingBytesMax: parseInteger('pending-bytes-max', required('pending-bytes-max'), valuesetBytesMax, 2 ** 40),
    // At least one message of the largest size gRPC takes must fit.
    receiveBytesMax: parseInteger('receive-bytes-max', required('receive-bytes-max'), grpcMessageBytesMax, 2 ** 40),
    batchDelayMs: parseInteger('batch-delay-ms', required('batch-delay-ms'), 0, 1000),
    rejoin: isSet('rejoin'),
    logLevel: required('log-level'),
  };

  validateTiming(config, isDefault);
  if (config.rejoin && peers.length === 1) {
    throw new UsageError(
      `invalid --rejoin: --peers lists only this member, ${JSON.stringify(id)}, and a member that rejoins waits for a leader ` +
        'to catch it up before it votes or campaigns. A cluster of one that lost its data starts again without --rejoin',
    );
  }
  if (!logLevels.includes(config.logLevel)) {
    throw new UsageError(`invalid --log-level ${JSON.stringify(config.logLevel)}: expected one of ${logLevels.join(', ')}`);
  }
  return config;
}

/** Returns the value of a boolean variable: 1 or true, 0, false or unset; throws UsageError otherwise. */
function parseBooleanVariable(name: string, value: string | undefined): boolean {
  if (value === undefined || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new UsageError(`invalid ${name} ${JSON.stringify(value)}: expected 1, true, 0 or false`);
}

/**
 * Checks the timing flags against each other. The error blames a flag the
 * user set, never one left at its default, and names both ways to fix it.
 */
function validateTiming(config: MemberConfig, isDefault: (name: string) => boolean): void {
  const { tickMs, heartbeatIntervalMs, electionTimeoutMs } = config;
  if (heartbeatIntervalMs < tickMs) {
    throw new UsageError(heartbeatBelowTickMessage(tickMs, heartbeatIntervalMs, electionTimeoutMs, isDefault));
  }
  if (electionTimeoutMs < 3 * heartbeatIntervalMs) {
    throw new UsageError(electionBelowHeartbeatsMessage(tickMs, heartbeatIntervalMs, electionTimeoutMs, isDefault));
  }
}

/** Returns `--tick-ms (20)`, or `--tick-ms (20, the default)` when the user did not set it. */
function flagWithValue(name: string, value: number, isDefault: (name: string) => boolean): string {
  return `--${name} (${value}${isDefault(name) ? ', the default' : ''})`;
}

function heartbeatBelowTickMessage(
  tickMs: number,
  heartbeatIntervalMs: number,
  electionTimeoutMs: number,
  isDefault: (name: string) => boolean,
): string {
  const reason = 'because the leader sends at most one heartbeat per tick';
  const lowerTick = `lower --tick-ms to at most ${heartbeatIntervalMs}`;
  // A heartbeat interval raised to the tick must still fit 3 times into the election timeout.
  const raiseHeartbeat =
    3 * tickMs <= electionTimeoutMs
      ? `raise --heartbeat-interval-ms to at least ${tickMs}`
      : `raise --heartbeat-interval-ms to at least ${tickMs} and --election-timeout-ms to at least ${3 * tickMs}`;
  if (isDefault('heartbeat-interval-ms')) {
    return (
      `invalid --tick-ms ${tickMs}: must be at most ${flagWithValue('heartbeat-interval-ms', heartbeatIntervalMs, isDefault)}, ` +
      `${reason}. ${capitalize(lowerTick)} or ${raiseHeartbeat}.`
    );
  }
  return (
    `invalid --heartbeat-interval-ms ${heartbeatIntervalMs}: must be at least ${flagWithValue('tick-ms', tickMs, isDefault)}, ` +
    `${reason}. ${capitalize(raiseHeartbeat)} or ${lowerTick}.`
  );
}

function electionBelowHeartbeatsMessage(
  tickMs: number,
  heartbeatIntervalMs: number,
  electionTimeoutMs: number,
  isDefault: (name: string) => boolean,
): string {
  const reason = 'or followers start elections between heartbeats';
  const heartbeatMax = Math.floor(electionTimeoutMs / 3);
  // Lowering the heartbeat interval helps only while it stays at least one tick.
  const fixes =
    heartbeatMax >= tickMs
      ? `Raise --election-timeout-ms to at least ${3 * heartbeatIntervalMs} or lower --heartbeat-interval-ms to at most ${heartbeatMax}.`
      : `Raise --election-timeout-ms to at least ${3 * heartbeatIntervalMs}.`;
  if (isDefault('election-timeout-ms')) {
    return (
      `invalid --heartbeat-interval-ms ${heartbeatIntervalMs}: must be at most a third of ` +
      `${flagWithValue('election-timeout-ms', electionTimeoutMs, isDefault)}, ${reason}. ${fixes}`
    );
  }
  return (
    `invalid --election-timeout-ms ${electionTimeoutMs}: must be at least 3 x ` +
    `${flagWithValue('heartbeat-interval-ms', heartbeatIntervalMs, isDefault)}, ${reason}. ${fixes}`
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Validates HOST:PORT (host may be an IPv6 literal in brackets); returns it
 * unchanged. Port 0 is rejected, because the OS would pick a port, and
 * peers, clients and HAProxy need a fixed one to reach the member.
 */
export function parseAddress(flag: string, value: string): string {
  if (!isMemberAddress(value)) {
    throw new UsageError(`invalid --${flag} ${JSON.stringify(value)}: expected ${memberAddressForm}`);
  }
  return value;
}

const memberAddressForm = 'HOST:PORT with a port from 1 to 65535';

function isMemberAddress(value: string): boolean {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  return port >= 1 && port <= 65535;
}

export function parsePeers(value: string): PeerAddress[] {
  const peers: PeerAddress[] = [];
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const id = part.slice(0, eq);
    if (eq <= 0 || !memberIdPattern.test(id)) {
      throw new UsageError(`invalid --peers entry ${JSON.stringify(part)}: expected ID=HOST:PORT with ID matching [a-z0-9-]{1,32}`);
    }
    if (peers.some((p) => p.id === id)) {
      throw new UsageError(`invalid --peers: id ${JSON.stringify(id)} is listed twice`);
    }
    const address = part.slice(eq + 1);
    if (!isMemberAddress(address)) {
      throw new UsageError(`invalid --peers entry ${JSON.stringify(part)}: expected ID=${memberAddressForm}`);
    }
    const sameAddress = peers.find((p) => p.address === address);
    if (sameAddress) {
      throw new UsageError(`invalid --peers: ${sameAddress.id} and ${id} share the address ${address}; each member needs its own`);
    }
    peers.push({ id, address });
  }
  return peers;
}

export function parseInteger(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`invalid --${flag} ${JSON.stringify(value)}: expected an integer from ${min} to ${max}`);
  }
  return n;
}
