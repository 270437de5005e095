// Snapshot and recovery figures of a real 3-member cluster on 127.0.0.1, in
// three parts. First, disk use and RSS of each member are sampled during a
// long run at a steady rate, to show whether they stay flat while snapshots
// compact the log. Second, a follower is stopped while N messages commit, and
// the script times its catch-up and notes whether it installed a snapshot.
// Third, it times how long that member, with N stored messages, takes to be
// ready after a clean stop and after SIGKILL. The figures are Markdown tables
// on stdout (and JSON with --json FILE), and progress goes to stderr:
//   node dist/bench/snapshot-recovery.js [--quick] [--messages N] [--long-run-s S]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { connectIngest, type IngestClient } from '../src/client';
import { runLoad, type LoadMeasurement } from '../src/client/load/load-generator';
import { AppendStreamPool } from '../src/client/stream-pool';
import { FlagError, parseFlags, parseIntegerFlag } from '../src/cli/client-flags';
import { uniqueValueMaker } from '../src/cli/load-flags';
import { LocalCluster, type LocalMemberSpec } from '../src/cluster/local-cluster';
import type { MemberStatus } from '../src/node/member';

const usage = `Usage: node dist/bench/snapshot-recovery.js [flags]

  --messages N            messages loaded while a follower is down, and stored
                          when start-up is timed (default 1000000; --quick 100000)
  --long-run-s S          seconds of steady load while disk and memory are sampled
                          (default 300; --quick 60)
  --sample-interval-s S   seconds between two samples (default 5)
  --rate N                steady load in messages/s (default 2000)
  --value-bytes N         size of each valueset in bytes (default 100)
  --streams N             AppendStream calls of the fast load (default 4)
  --window N              appends in flight per stream (default 256)
  --startup-runs N        restarts timed per stop signal (default 3; --quick 1)
  --snapshot-threshold N  passed to every member (default: the member's default)
  --base-port N           first of 8 contiguous ports the members listen on; the
                          two clusters use them one after the other
                          (default 0: ports the OS picks)
  --member-node-flags=F   Node.js flags for every member process, separated by
                          spaces, e.g. --member-node-flags="--heapsnapshot-signal=SIGUSR2"
                          (the = is needed because the value starts with a dash)
  --json FILE             also write all figures and samples to FILE as JSON
  --quick                 the shorter defaults above
  --keep                  keep the data folder and member logs
  -h, --help              show this help
`;

interface BenchFlags {
  readonly messages: number;
  readonly longRunS: number;
  readonly sampleIntervalS: number;
  readonly ratePerSecond: number;
  readonly valueBytes: number;
  readonly streams: number;
  readonly window: number;
  readonly startupRuns: number;
  readonly snapshotThreshold: number | null;
  readonly basePort: number;
  readonly memberNodeFlags: readonly string[];
  readonly jsonFile: string | null;
  readonly keep: boolean;
}

/** Maximum waits for a leader, a catch-up or a restart before the run fails. */
const leaderTimeoutMs = 30_000;
const catchUpTimeoutMs = 30 * 60_000;
const readyTimeoutMs = 5 * 60_000;
/** Maximum wait of one append of the fast load for its reply. A failed append is retried. */
const replyTimeoutMs = 60_000;
const appendAttemptsMax = 5;
const statusPollMs = 100;
const readyPollMs = 20;
const progressIntervalMs = 5_000;

function parseBenchFlags(argv: readonly string[]): BenchFlags | null {
  const values = parseFlags(argv, {
    messages: { type: 'string' },
    'long-run-s': { type: 'string' },
    'sample-interval-s': { type: 'string' },
    rate: { type: 'string' },
    'value-bytes': { type: 'string' },
    streams: { type: 'string' },
    window: { type: 'string' },
    'startup-runs': { type: 'string' },
    'snapshot-threshold': { type: 'string' },
    'base-port': { type: 'string' },
    'member-node-flags': { type: 'string' },
    json: { type: 'string' },
    quick: { type: 'boolean' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return null;
  const quick = values.quick === true;
  const threshold = values['snapshot-threshold'];
  return {
    messages: parseIntegerFlag('messages', values.messages, quick ? 100_000 : 1_000_000, 1, 100_000_000),
    longRunS: parseIntegerFlag('long-run-s', values['long-run-s'], quick ? 60 : 300, 1, 86_400),
    sampleIntervalS: parseIntegerFlag('sample-interval-s', values['sample-interval-s'], 5, 1, 3_600),
    ratePerSecond: parseIntegerFlag('rate', values.rate, 2_000, 1, 1_000_000),
    valueBytes: parseIntegerFlag('value-bytes', values['value-bytes'], 100, 1, 65_536),
    streams: parseIntegerFlag('streams', values.streams, 4, 1, 1_000),
    window: parseIntegerFlag('window', values.window, 256, 1, 100_000),
    startupRuns: parseIntegerFlag('startup-runs', values['startup-runs'], quick ? 1 : 3, 1, 100),
    snapshotThreshold: threshold === undefined ? null : parseIntegerFlag('snapshot-threshold', threshold, 0, 1, 1e9),
    basePort: parseIntegerFlag('base-port', values['base-port'], 0, 0, 65_535 - 7),
    memberNodeFlags: (values['member-node-flags'] ?? '').split(' ').filter((flag) => flag !== ''),
    jsonFile: values.json ?? null,
    keep: values.keep === true,
  };
}

function progress(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Cluster and member measurements

async function fetchJson<T>(url: string): Promise<{ status: number; body: T } | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return { status: response.status, body: (await response.json()) as T };
  } catch {
    return null;
  }
}

async function memberStatus(member: LocalMemberSpec): Promise<MemberStatus | null> {
  return (await fetchJson<MemberStatus>(`http://${member.http}/status`))?.body ?? null;
}

async function waitUntil<T>(what: string, timeoutMs: number, intervalMs: number, check: () => Promise<T | null>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function waitForLeader(cluster: LocalCluster): Promise<LocalMemberSpec> {
  return waitUntil('a leader', leaderTimeoutMs, statusPollMs, async () => {
    const all = await Promise.all(cluster.members.map((m) => memberStatus(m)));
    const leader = all.find((s) => s?.role === 'leader');
    return leader ? cluster.member(leader.id) : null;
  });
}

/** Bytes allocated on disk below `target`, as `du -s --block-size=1` counts them. */
function diskUsageBytes(target: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(target);
  } catch {
    return 0; // Deleted while walking, e.g. a snapshot pruned meanwhile.
  }
  let bytes = stat.blocks * 512;
  if (stat.isDirectory()) {
    for (const name of fs.readdirSync(target)) bytes += diskUsageBytes(path.join(target, name));
  }
  return bytes;
}

/**
 * Returns the resident set size of a process and its anonymous part (V8 heap,
 * stacks, malloc arenas, but not mapped files), from /proc/PID/status (VmRSS,
 * RssAnon). Both are null when the process is gone.
 */
function residentBytes(pid: number | undefined): { rss: number | null; anon: number | null } {
  if (pid === undefined) return { rss: null, anon: null };
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return { rss: null, anon: null };
  }
  const kib = (field: string): number | null => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : null;
  };
  return { rss: kib('VmRSS'), anon: kib('RssAnon') };
}

/** Returns the values of unlabelled `series` from one scrape of the member's /metrics, with null for each one missing. */
async function metricValues(member: LocalMemberSpec, series: readonly string[]): Promise<(number | null)[]> {
  let lines: string[];
  try {
    const text = await (await fetch(`http://${member.http}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    lines = text.split('\n');
  } catch {
    return series.map(() => null);
  }
  return series.map((name) => {
    const line = lines.find((l) => l.startsWith(`${name} `));
    return line === undefined ? null : Number(line.slice(name.length + 1));
  });
}

async function metricValue(member: LocalMemberSpec, series: string): Promise<number | null> {
  return (await metricValues(member, [series]))[0] ?? null;
}

function logSince(member: LocalMemberSpec, offset: number): string {
  return fs.readFileSync(member.logFile).subarray(offset).toString('utf8');
}

function logSize(member: LocalMemberSpec): number {
  return fs.existsSync(member.logFile) ? fs.statSync(member.logFile).size : 0;
}

/** Returns the first JSON log line with message `msg` in `text`, or null. */
function findLogLine(text: string, msg: string): Record<string, unknown> | null {
  const line = text.split('\n').find((l) => l.includes(`"msg":"${msg}"`));
  return line === undefined ? null : (JSON.parse(line) as Record<string, unknown>);
}

/** Clusters running now, which a SIGINT or SIGTERM of this script stops. */
const runningClusters = new Set<LocalCluster>();

async function startCluster(dataDir: string, flags: BenchFlags): Promise<LocalCluster> {
  const memberArgs = flags.snapshotThreshold === null ? [] : ['--snapshot-threshold', String(flags.snapshotThreshold)];
  const cluster = await LocalCluster.create({
    dataDir,
    size: 3,
    basePort: flags.basePort,
    withHaproxy: false,
    memberArgs,
    nodeFlags: flags.memberNodeFlags,
  });
  runningClusters.add(cluster);
  cluster.startAll();
  await waitForLeader(cluster);
  return cluster;
}

function clientTarget(cluster: LocalCluster): string {
  return cluster.members.map((m) => m.grpc).join(',');
}

// ---------------------------------------------------------------------------
// Load

/**
 * Appends `count` unique valuesets as fast as the cluster takes them, with
 * streams x window appends in flight. A failed append is retried (a retry is
 * safe because applying deduplicates), so every message is committed.
 */
async function appendCount(client: IngestClient, count: number, flags: BenchFlags): Promise<{ seconds: number; retries: number }> {
  const valueOf = uniqueValueMaker(flags.valueBytes);
  const pool = new AppendStreamPool(client, flags.streams, { windowSize: flags.window, replyTimeoutMs });
  const started = performance.now();
  let next = 0;
  let retries = 0;
  const reporter = setInterval(
    () => progress(`loaded ${next.toLocaleString('en-US')} of ${count.toLocaleString('en-US')}`),
    progressIntervalMs,
  );
  const worker = async (slot: number): Promise<void> => {
    while (next < count) {
      const valueset = valueOf(next++);
      for (let attempt = 1; ; attempt++) {
        try {
          await pool.append(slot, valueset);
          break;
        } catch (err) {
          if (attempt >= appendAttemptsMax) throw err;
          retries += 1;
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: flags.streams * flags.window }, (_, slot) => worker(slot)));
  } finally {
    clearInterval(reporter);
    await pool.close();
  }
  return { seconds: (performance.now() - started) / 1000, retries };
}

// ---------------------------------------------------------------------------
// 1. Disk and RSS during a long steady run

interface MemberSample {
  readonly role: MemberStatus['role'] | null;
  readonly diskBytes: number;
  readonly raftLogBytes: number;
  readonly stateBytes: number;
  readonly snapshotsBytes: number;
  readonly rssBytes: number | null;
  /** RssAnon: the resident memory that is not a mapped file. */
  readonly rssAnonBytes: number | null;
  /** V8 heap in use and reserved, and memory of Buffers and other objects outside it, as the member's /metrics reports them. */
  readonly heapUsedBytes: number | null;
  readonly heapTotalBytes: number | null;
  readonly externalBytes: number | null;
  readonly snapshotIndex: number | null;
  readonly messageCount: number | null;
}

interface Sample {
  readonly seconds: number;
  /** Wall clock time of the sample, ISO 8601 in UTC. */
  readonly time: string;
  /** The machine's 1-minute load average, which shows other work on it. */
  readonly loadAverage: number;
  readonly members: ReadonlyMap<string, MemberSample>;
}

const memorySeries = ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes'] as const;

async function sampleMember(cluster: LocalCluster, member: LocalMemberSpec): Promise<MemberSample> {
  const [status, [heapUsedBytes, heapTotalBytes, externalBytes]] = await Promise.all([
    memberStatus(member),
    metricValues(member, memorySeries),
  ]);
  const resident = residentBytes(cluster.processes.get(member.id)?.pid);
  const raftFiles = ['raft.db', 'raft.db-wal', 'raft.db-shm'].map((name) => path.join(member.dataDir, name));
  return {
    role: status?.role ?? null,
    diskBytes: diskUsageBytes(member.dataDir),
    raftLogBytes: raftFiles.reduce((sum, file) => sum + diskUsageBytes(file), 0),
    stateBytes: diskUsageBytes(path.join(member.dataDir, 'state')),
    snapshotsBytes: diskUsageBytes(path.join(member.dataDir, 'snapshots')),
    rssBytes: resident.rss,
    rssAnonBytes: resident.anon,
    heapUsedBytes: heapUsedBytes ?? null,
    heapTotalBytes: heapTotalBytes ?? null,
    externalBytes: externalBytes ?? null,
    snapshotIndex: status?.snapshotIndex ?? null,
    messageCount: status?.messageCount ?? null,
  };
}

async function takeSample(cluster: LocalCluster, startedMs: number): Promise<Sample> {
  const members = new Map<string, MemberSample>();
  for (const m of cluster.members) members.set(m.id, await sampleMember(cluster, m));
  return {
    seconds: Math.round((performance.now() - startedMs) / 1000),
    time: new Date().toISOString(),
    loadAverage: os.loadavg()[0] ?? 0,
    members,
  };
}

/** A member's snapshot metrics at the end of the long run. */
interface SnapshotFigures {
  readonly takenCount: number | null;
  readonly meanSeconds: number | null;
  readonly lastBytes: number | null;
}

interface LongRunResult {
  readonly load: LoadMeasurement;
  readonly samples: readonly Sample[];
  readonly snapshots: ReadonlyMap<string, SnapshotFigures>;
}

async function snapshotFigures(member: LocalMemberSpec): Promise<SnapshotFigures> {
  const [takenCount, secondsSum, count, lastBytes] = await Promise.all([
    metricValue(member, 'replog_snapshots_total'),
    metricValue(member, 'replog_snapshot_seconds_sum'),
    metricValue(member, 'replog_snapshot_seconds_count'),
    metricValue(member, 'replog_snapshot_bytes'),
  ]);
  const meanSeconds = secondsSum !== null && count ? secondsSum / count : null;
  return { takenCount, meanSeconds, lastBytes };
}

async function runLongRun(cluster: LocalCluster, flags: BenchFlags): Promise<LongRunResult> {
  progress(`long run: ${flags.ratePerSecond} messages/s for ${flags.longRunS} s, a sample every ${flags.sampleIntervalS} s`);
  const client = connectIngest(clientTarget(cluster));
  const pool = new AppendStreamPool(client, flags.streams, { windowSize: flags.window, replyTimeoutMs });
  const valueOf = uniqueValueMaker(flags.valueBytes);
  const startedMs = performance.now();
  const samples: Sample[] = [await takeSample(cluster, startedMs)];
  let sampling = Promise.resolve();
  const sampler = setInterval(() => {
    sampling = sampling.then(async () => {
      const sample = await takeSample(cluster, startedMs);
      samples.push(sample);
      progress(`sample at ${sample.seconds} s: ${describeSample(sample)}`);
    });
  }, flags.sampleIntervalS * 1000);
  const pids = [...cluster.processes.values()].map((p) => p.pid).filter((pid): pid is number => pid !== undefined);
  try {
    const plan = {
      workerCount: flags.streams * flags.window,
      ratePerSecond: flags.ratePerSecond,
      warmupMs: 0,
      durationMs: flags.longRunS * 1000,
      watchedPids: pids,
    };
    const load = await runLoad(plan, async (worker, sequence) => void (await pool.append(worker, valueOf(sequence))));
    clearInterval(sampler);
    await sampling;
    const last = await takeSample(cluster, startedMs);
    if (last.seconds !== samples[samples.length - 1]?.seconds) samples.push(last);
    const snapshots = new Map<string, SnapshotFigures>();
    for (const m of cluster.members) snapshots.set(m.id, await snapshotFigures(m));
    return { load, samples, snapshots };
  } finally {
    clearInterval(sampler);
    await pool.close();
    client.close();
  }
}

function describeSample(sample: Sample): string {
  const parts = [...sample.members].map(
    ([id, s]) =>
      `${id}${s.role === 'leader' ? ' (leader)' : ''} disk ${mib(s.diskBytes)} MiB, log ${mib(s.raftLogBytes)} MiB, ` +
      `RSS ${mib(s.rssBytes)} MiB, heap ${mib(s.heapUsedBytes)} of ${mib(s.heapTotalBytes)} MiB, external ${mib(s.externalBytes)} MiB`,
  );
  return `${parts.join('; ')}; load ${sample.loadAverage.toFixed(2)}`;
}

// ---------------------------------------------------------------------------
// 2. Catch-up of a follower that missed N messages

interface CatchUpResult {
  readonly memberId: string;
  readonly loadSeconds: number;
  readonly loadRetries: number;
  readonly catchUpSeconds: number;
  readonly targetCommitIndex: number;
  readonly bySnapshot: boolean;
  readonly snapshotBytes: number | null;
  /** From 'receiving snapshot' to 'installed snapshot from leader', by the member's log clock. */
  readonly transferAndInstallSeconds: number | null;
}

async function runCatchUp(cluster: LocalCluster, flags: BenchFlags): Promise<CatchUpResult> {
  const leader = await waitForLeader(cluster);
  const follower = cluster.members.find((m) => m.id !== leader.id)!;
  progress(`catch-up: stopping ${follower.id}, loading ${flags.messages.toLocaleString('en-US')} messages`);
  await cluster.stopMember(follower.id, 'SIGTERM');
  const client = connectIngest(clientTarget(cluster));
  const load = await appendCount(client, flags.messages, flags).finally(() => client.close());
  progress(`loaded in ${load.seconds.toFixed(1)} s; restarting ${follower.id}`);

  const offset = logSize(follower);
  const startedMs = performance.now();
  cluster.startMember(follower.id);
  const targetCommitIndex = await waitUntil(`${follower.id} to catch up`, catchUpTimeoutMs, statusPollMs, async () => {
    const [own, lead] = await Promise.all([memberStatus(follower), memberStatus(leader)]);
    if (!own || !lead || lead.role !== 'leader') return null;
    return own.appliedIndex >= lead.commitIndex ? lead.commitIndex : null;
  });
  const catchUpSeconds = (performance.now() - startedMs) / 1000;
  const log = logSince(follower, offset);
  const receiving = findLogLine(log, 'receiving snapshot');
  const installed = findLogLine(log, 'installed snapshot from leader');
  return {
    memberId: follower.id,
    loadSeconds: load.seconds,
    loadRetries: load.retries,
    catchUpSeconds,
    targetCommitIndex,
    bySnapshot: installed !== null,
    snapshotBytes: typeof receiving?.['bytes'] === 'number' ? receiving['bytes'] : null,
    transferAndInstallSeconds:
      receiving && installed ? (Number(installed['time']) - Number(receiving['time'])) / 1000 : null,
  };
}

// ---------------------------------------------------------------------------
// 3. Start-up time of a member with N stored messages

interface StartupRun {
  readonly signal: NodeJS.Signals;
  readonly exitCode: number | null;
  /** Spawn to /healthz 200: the process has opened its databases and serves. */
  readonly servingSeconds: number;
  /** Spawn to /readyz 200: a leader is known and everything committed is applied. */
  readonly readySeconds: number;
}

async function timeRestart(cluster: LocalCluster, member: LocalMemberSpec, signal: NodeJS.Signals): Promise<StartupRun> {
  const exitCode = await cluster.stopMember(member.id, signal);
  const startedMs = performance.now();
  cluster.startMember(member.id);
  let servingSeconds: number | null = null;
  await waitUntil(`${member.id} to be ready`, readyTimeoutMs, readyPollMs, async () => {
    const ready = await fetchJson<unknown>(`http://${member.http}/readyz`);
    if (ready && servingSeconds === null) servingSeconds = (performance.now() - startedMs) / 1000;
    return ready?.status === 200 ? true : null;
  });
  const readySeconds = (performance.now() - startedMs) / 1000;
  return { signal, exitCode, servingSeconds: servingSeconds ?? readySeconds, readySeconds };
}

async function runStartups(cluster: LocalCluster, memberId: string, flags: BenchFlags): Promise<StartupRun[]> {
  const member = cluster.member(memberId);
  const runs: StartupRun[] = [];
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    for (let i = 0; i < flags.startupRuns; i++) {
      progress(`start-up: ${signal} to ${member.id}, run ${i + 1} of ${flags.startupRuns}`);
      runs.push(await timeRestart(cluster, member, signal));
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------
// Report

function mib(bytes: number | null): string {
  return bytes === null ? '-' : (bytes / 1024 / 1024).toFixed(1);
}

function minMax(values: readonly (number | null)[]): string {
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return '-';
  return `${mib(Math.min(...known))} / ${mib(Math.max(...known))}`;
}

function formatLongRun(result: LongRunResult, flags: BenchFlags): string {
  const { load, samples } = result;
  const latency = load.latencyMs;
  return [
    `### Steady load: disk and RSS over ${flags.longRunS} s`,
    '',
    `Offered ${flags.ratePerSecond} messages/s of ${flags.valueBytes} bytes. ` +
      `Acknowledged ${Math.round(load.acknowledgedPerSecond)}/s (${load.acknowledged.toLocaleString('en-US')} in all), ` +
      `errors ${JSON.stringify(load.errorsByCode)}, latency p50 ${latency.p50.toFixed(1)} ms, ` +
      `p99 ${latency.p99.toFixed(1)} ms, max ${latency.max.toFixed(1)} ms.`,
    '',
    formatSnapshotTable(result),
    '',
    `Min / max in MiB over ${samples.length} samples, one every ${flags.sampleIntervalS} s, ` +
      'over the whole run and from the member\'s first snapshot on:',
    '',
    formatRangeTable(result),
    '',
    formatMemoryRangeTable(result),
    '',
    formatSeries(samples),
    '',
    formatMemorySeries(samples),
  ].join('\n');
}

function formatSnapshotTable(result: LongRunResult): string {
  const lines = [
    '| member | snapshots taken | mean snapshot time | last snapshot | messages stored at the end | data folder at the end |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  const last = result.samples[result.samples.length - 1];
  for (const [id, figures] of result.snapshots) {
    const end = last?.members.get(id);
    const mean = figures.meanSeconds === null ? '-' : `${figures.meanSeconds.toFixed(2)} s`;
    const stored = end?.messageCount?.toLocaleString('en-US') ?? '-';
    lines.push(
      `| ${id} | ${figures.takenCount ?? '-'} | ${mean} | ${mib(figures.lastBytes)} MiB | ${stored} | ${mib(end?.diskBytes ?? null)} MiB |`,
    );
  }
  return lines.join('\n');
}

function formatRangeTable(result: LongRunResult): string {
  const lines = [
    '| member | data folder (du) | state/ | snapshots/ | Raft log (raft.db + WAL) | Raft log from 1st snapshot | RSS | RSS from 1st snapshot |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const id of result.snapshots.keys()) {
    const own = result.samples.map((sample) => sample.members.get(id)).filter((s): s is MemberSample => s !== undefined);
    const compacted = own.filter((s) => (s.snapshotIndex ?? 0) > 0);
    const range = (list: readonly MemberSample[], pick: (s: MemberSample) => number | null): string => minMax(list.map(pick));
    const cells = [
      range(own, (s) => s.diskBytes),
      range(own, (s) => s.stateBytes),
      range(own, (s) => s.snapshotsBytes),
      range(own, (s) => s.raftLogBytes),
      range(compacted, (s) => s.raftLogBytes),
      range(own, (s) => s.rssBytes),
      range(compacted, (s) => s.rssBytes),
    ];
    lines.push(`| ${id} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Formats the min / max of each member's memory figures over the run, with the member's role at the end. */
function formatMemoryRangeTable(result: LongRunResult): string {
  const lines = [
    '| member | role at the end | RSS | RSS anonymous | V8 heap used | V8 heap total | external |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  const last = result.samples[result.samples.length - 1];
  for (const id of result.snapshots.keys()) {
    const own = result.samples.map((sample) => sample.members.get(id)).filter((s): s is MemberSample => s !== undefined);
    const range = (pick: (s: MemberSample) => number | null): string => minMax(own.map(pick));
    const cells = [
      last?.members.get(id)?.role ?? '-',
      range((s) => s.rssBytes),
      range((s) => s.rssAnonBytes),
      range((s) => s.heapUsedBytes),
      range((s) => s.heapTotalBytes),
      range((s) => s.externalBytes),
    ];
    lines.push(`| ${id} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Formats a Markdown table under `title`, right-aligned. */
function markdownTable(title: string, header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [title, '', `| ${header.join(' | ')} |`, `| ${header.map(() => '---:').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

/** Formats the memory of each member at each sample, with the machine's load average. */
function formatMemorySeries(samples: readonly Sample[]): string {
  const ids = [...(samples[0]?.members.keys() ?? [])];
  const header = ['s', 'load', ...ids.flatMap((id) => [`${id} RSS`, `${id} anon`, `${id} heap used`, `${id} heap total`, `${id} external`])];
  const rows = samples.map((sample) => {
    const cells = ids.flatMap((id) => {
      const s = sample.members.get(id);
      if (!s) return ['-', '-', '-', '-', '-'];
      const mark = s.role === 'leader' ? '*' : '';
      return [`${mib(s.rssBytes)}${mark}`, mib(s.rssAnonBytes), mib(s.heapUsedBytes), mib(s.heapTotalBytes), mib(s.externalBytes)];
    });
    return [String(sample.seconds), sample.loadAverage.toFixed(2), ...cells];
  });
  const title =
    'Memory series (MiB; "anon" is RssAnon, the heap columns are the V8 heap, "external" is memory of Buffers ' +
    'and other objects outside it; * marks the leader):';
  return markdownTable(title, header, rows);
}

function formatSeries(samples: readonly Sample[]): string {
  const ids = [...(samples[0]?.members.keys() ?? [])];
  const header = ['s', ...ids.flatMap((id) => [`${id} du`, `${id} log`, `${id} RSS`, `${id} snapshot index`])];
  const rows = samples.map((sample) => {
    const cells = ids.flatMap((id) => {
      const s = sample.members.get(id);
      return s ? [mib(s.diskBytes), mib(s.raftLogBytes), mib(s.rssBytes), String(s.snapshotIndex ?? '-')] : ['-', '-', '-', '-'];
    });
    return [String(sample.seconds), ...cells];
  });
  return markdownTable('Series (MiB; "log" is raft.db with its WAL):', header, rows);
}

function formatCatchUp(result: CatchUpResult, flags: BenchFlags): string {
  const rate = Math.round(flags.messages / result.loadSeconds).toLocaleString('en-US');
  const commit = result.targetCommitIndex.toLocaleString('en-US');
  const snapshotBytes = result.snapshotBytes === null ? '-' : `${mib(result.snapshotBytes)} MiB`;
  const transfer = result.transferAndInstallSeconds;
  return [
    `### Catch-up after ${flags.messages.toLocaleString('en-US')} messages committed while a follower was down`,
    '',
    '| figure | value |',
    '| --- | ---: |',
    `| load time (AppendStream, ${flags.streams} streams x ${flags.window} in flight) ` +
      `| ${result.loadSeconds.toFixed(1)} s (${rate} messages/s, ${result.loadRetries} retried) |`,
    `| catch-up time of ${result.memberId}: restart to appliedIndex = leader commit (${commit}) ` +
      `| ${result.catchUpSeconds.toFixed(1)} s |`,
    `| caught up by snapshot ('installed snapshot from leader') | ${result.bySnapshot ? 'yes' : 'no'} |`,
    `| snapshot size | ${snapshotBytes} |`,
    `| snapshot transfer and install ('receiving snapshot' to 'installed') ` +
      `| ${transfer === null ? '-' : `${transfer.toFixed(1)} s`} |`,
  ].join('\n');
}

function formatStartups(runs: readonly StartupRun[], memberId: string, storedMessages: number): string {
  const lines = [
    `### Start-up of ${memberId} with ${storedMessages.toLocaleString('en-US')} stored messages`,
    '',
    '| stop | exit status | start to /healthz 200 | start to /readyz 200 |',
    '| --- | ---: | ---: | ---: |',
  ];
  for (const run of runs) {
    lines.push(`| ${run.signal} | ${run.exitCode ?? 'killed'} | ${run.servingSeconds.toFixed(2)} s | ${run.readySeconds.toFixed(2)} s |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Main

/** All figures of one run, as --json writes them. The Markdown report shows the same values. */
interface BenchResult {
  flags: BenchFlags;
  longRun?: LongRunResult;
  catchUp?: CatchUpResult;
  startups?: { memberId: string; storedMessages: number; runs: StartupRun[] };
}

async function runBench(flags: BenchFlags, dataDir: string, result: BenchResult): Promise<string> {
  const sections: string[] = [];
  const steady = await startCluster(path.join(dataDir, 'steady'), flags);
  try {
    result.longRun = await runLongRun(steady, flags);
    sections.push(formatLongRun(result.longRun, flags));
  } finally {
    await steady.stopAll('SIGTERM');
    runningClusters.delete(steady);
  }
  const recovery = await startCluster(path.join(dataDir, 'recovery'), flags);
  try {
    const catchUp = await runCatchUp(recovery, flags);
    result.catchUp = catchUp;
    sections.push(formatCatchUp(catchUp, flags));
    const stored = (await memberStatus(recovery.member(catchUp.memberId)))?.messageCount ?? flags.messages;
    const runs = await runStartups(recovery, catchUp.memberId, flags);
    result.startups = { memberId: catchUp.memberId, storedMessages: stored, runs };
    sections.push(formatStartups(runs, catchUp.memberId, stored));
  } finally {
    await recovery.stopAll('SIGTERM');
    runningClusters.delete(recovery);
  }
  return `${sections.join('\n\n')}\n`;
}

/** Writes `result` to `file` as JSON, with each per-member Map as an object keyed by member id. */
function writeJson(file: string, result: BenchResult): void {
  const replacer = (_key: string, value: unknown): unknown => (value instanceof Map ? Object.fromEntries(value) : value);
  fs.writeFileSync(file, `${JSON.stringify(result, replacer, 2)}\n`);
}

async function main(): Promise<number> {
  let flags: BenchFlags | null;
  try {
    flags = parseBenchFlags(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    process.stderr.write(`${err.message}\n\n${usage}`);
    return 2;
  }
  if (flags === null) {
    process.stdout.write(usage);
    return 0;
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-snapshot-bench-'));
  const result: BenchResult = { flags };
  try {
    process.stdout.write(await runBench(flags, dataDir, result));
    return 0;
  } finally {
    // Written after a failure too, with the parts that finished before it.
    if (flags.jsonFile !== null) {
      writeJson(flags.jsonFile, result);
      progress(`wrote ${flags.jsonFile}`);
    }
    if (flags.keep) progress(`kept data and member logs in ${dataDir}`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping the members`);
    void Promise.all([...runningClusters].map((c) => c.stopAll('SIGKILL'))).finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`snapshot-recovery failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
