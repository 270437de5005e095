// Shared helpers of the end-to-end tests: a real cluster of member processes
// in a fresh temp folder, optionally behind a real HAProxy, and polling of
// their /status endpoints.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { renderHaproxyConfig } from '../../src/cli/haproxy-config';
import { connectIngest, isRetryableAppendError, type IngestClient } from '../../src/client';
import { loadReplogPackage } from '../../src/client/proto';
import { LocalCluster } from '../../src/cluster/local-cluster';
import type { MemberStatus } from '../../src/node/member';

export interface TestCluster {
  readonly cluster: LocalCluster;
  readonly dir: string;
  /** gRPC target for clients: HAProxy when started, else every member round robin. */
  readonly target: string;
  close(): Promise<void>;
}

// A test file that runs too long gets SIGTERM from test/run.ts. Exiting through
// process.exit runs the 'exit' listener with which LocalCluster stops HAProxy.
process.once('SIGTERM', () => process.exit(143));

/** Fast timeouts so elections in tests take well under a second. */
export const fastTimingArgs = ['--tick-ms', '10', '--election-timeout-ms', '300', '--heartbeat-interval-ms', '50'];

export async function startCluster(options: { size?: number; haproxy?: boolean; memberArgs?: string[] } = {}): Promise<TestCluster> {
  return startUntilServing(() => launchCluster(options));
}

/** Starts the members and HAProxy in a new temp folder without waiting for them. */
async function launchCluster(options: { size?: number; haproxy?: boolean; memberArgs?: string[] }): Promise<TestCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-e2e-'));
  const cluster = await LocalCluster.create({
    dataDir: dir,
    size: options.size ?? 3,
    basePort: 0,
    withHaproxy: options.haproxy ?? false,
    memberArgs: [...fastTimingArgs, ...(options.memberArgs ?? [])],
  });
  const tc: TestCluster = {
    cluster,
    dir,
    target: options.haproxy ? cluster.haproxyAddress! : cluster.members.map((m) => m.grpc).join(','),
    close: async () => {
      await cluster.stopAll('SIGKILL');
      if (process.env['REPLOG_KEEP_TEST_DATA']) console.log(`kept test data in ${dir}`);
      else fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  cluster.startAll();
  if (options.haproxy) {
    const started = cluster.startHaproxy(renderHaproxyConfig({ bindGrpc: cluster.haproxyAddress!, members: cluster.members }));
    if (!started) {
      await tc.close();
      throw new Error('haproxy is not installed: apt-get install -y haproxy');
    }
  }
  return tc;
}

/** Maximum clusters started, each on new ports, while other processes keep taking the ports chosen. */
const clusterStartAttemptsMax = 3;

/** A member or HAProxy failed to listen because another process took its port after LocalCluster chose it. */
class PortTakenError extends Error {
  override readonly name = 'PortTakenError';
}

/**
 * Starts a cluster with `launch` and waits until every member serves /status
 * and a leader is known. LocalCluster chooses ports that were free a moment
 * earlier, so another process (a second test run, say) can bind one first.
 * The member then exits with EADDRINUSE, and a new cluster starts on new ports.
 * NOTE: a member restarted later in a test binds its port again and can lose
 * it in the same way, and that case is not retried.
 */
export async function startUntilServing(launch: () => Promise<TestCluster>): Promise<TestCluster> {
  for (let attempt = 1; ; attempt++) {
    const tc = await launch();
    try {
      await waitForEveryMemberServing(tc.cluster);
      await waitForLeader(tc.cluster);
      return tc;
    } catch (err) {
      await tc.close();
      if (!(err instanceof PortTakenError) || attempt === clusterStartAttemptsMax) throw err;
      console.log(`${err.message}; starting the cluster again on new ports (attempt ${attempt + 1} of ${clusterStartAttemptsMax})`);
    }
  }
}

/**
 * Waits until every member serves /status. Throws PortTakenError when a
 * member or HAProxy exited because its port was in use, and an error with
 * the member's log tail when a member exited for another reason.
 */
async function waitForEveryMemberServing(cluster: LocalCluster, timeoutMs = 20_000): Promise<void> {
  await waitFor('every member serving /status', async () => {
    const haproxy = cluster.haproxyProcess;
    if (haproxy && (haproxy.exitCode !== null || haproxy.signalCode !== null)) {
      const log = readText(path.join(path.dirname(cluster.members[0]!.dataDir), 'haproxy.log'));
      if (/Address already in use/.test(log)) throw new PortTakenError(`haproxy failed to listen on ${cluster.haproxyAddress}: the port is in use`);
      throw new Error(`haproxy exited during start:\n${log.slice(-2000)}`);
    }
    for (const m of cluster.members) {
      const child = cluster.processes.get(m.id);
      if (child && child.exitCode === null && child.signalCode === null) continue;
      const log = readText(m.logFile);
      if (/EADDRINUSE/.test(log)) {
        throw new PortTakenError(`${m.id} failed to listen on ${m.grpc} or ${m.http}: a port is in use${logTail(cluster, m.id, 3)}`);
      }
      throw new Error(`${m.id} exited during start:${logTail(cluster, m.id)}`);
    }
    const all = await statuses(cluster);
    return all.size === cluster.members.length;
  }, timeoutMs);
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export async function fetchStatus(httpAddress: string): Promise<MemberStatus | null> {
  try {
    const response = await fetch(`http://${httpAddress}/status`, { signal: AbortSignal.timeout(1000) });
    return (await response.json()) as MemberStatus;
  } catch {
    return null;
  }
}

/** Status of every running member, keyed by id; stopped members are missing. */
export async function statuses(cluster: LocalCluster, ids?: readonly string[]): Promise<Map<string, MemberStatus>> {
  const result = new Map<string, MemberStatus>();
  const members = cluster.members.filter((m) => !ids || ids.includes(m.id));
  await Promise.all(
    members.map(async (m) => {
      const s = await fetchStatus(m.http);
      if (s) result.set(m.id, s);
    }),
  );
  return result;
}

export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until a leader is known to every running member listed; returns its status. */
export async function waitForLeader(cluster: LocalCluster, ids?: readonly string[], timeoutMs = 20_000): Promise<MemberStatus> {
  return waitFor('a leader', async () => {
    const all = await statuses(cluster, ids);
    const leaders = [...all.values()].filter((s) => s.role === 'leader');
    if (leaders.length !== 1) return null;
    const leader = leaders[0]!;
    return [...all.values()].every((s) => s.leaderId === leader.id) ? leader : null;
  }, timeoutMs);
}

/**
 * Waits until the listed members have applied the same index, at least
 * `minApplied`, with equal digests. On timeout the error shows what each
 * member last reported and the end of its log, so a failure on a
 * CI machine can be read without the deleted test folder.
 */
export async function waitInSync(cluster: LocalCluster, ids: readonly string[], minApplied = 0, timeoutMs = 30_000): Promise<MemberStatus[]> {
  let last = new Map<string, MemberStatus>();
  try {
    return await waitFor(`members ${ids.join(', ')} in sync`, async () => {
      const all = await statuses(cluster, ids);
      last = all;
      if (all.size !== ids.length) return null;
      const list = [...all.values()];
      const first = list[0]!;
      const same = list.every(
        (s) => s.appliedIndex === first.appliedIndex && s.digest === first.digest && s.messageCount === first.messageCount,
      );
      return same && first.appliedIndex >= minApplied && first.appliedIndex === first.commitIndex ? list : null;
    }, timeoutMs);
  } catch (err) {
    const lines = ids.map((id) => {
      const s = last.get(id);
      const summary = s
        ? `${s.role} term ${s.term} leader ${s.leaderId ?? '-'} commit ${s.commitIndex} applied ${s.appliedIndex} ` +
          `last log ${s.lastLogIndex} snapshot ${s.snapshotIndex} messages ${s.messageCount} digest ${s.digest.slice(0, 16)}`
        : 'no status';
      return `  ${id}: ${summary}${logTail(cluster, id)}`;
    });
    throw new Error(`${(err as Error).message} (at least index ${minApplied}); last seen:\n${lines.join('\n')}`);
  }
}

/** Returns the last lines of a member's log file, indented, for a failure message. */
function logTail(cluster: LocalCluster, id: string, count = 10): string {
  let text: string;
  try {
    text = fs.readFileSync(cluster.member(id).logFile, 'utf8');
  } catch {
    return '';
  }
  return text
    .trimEnd()
    .split('\n')
    .slice(-count)
    .map((line) => `\n    ${line.slice(0, 400)}`)
    .join('');
}

export function connect(target: string): IngestClient {
  return connectIngest(target);
}

export interface LoadResult {
  readonly acknowledged: Map<string, number>;
  readonly failed: number;
}

/** Attempts of one append in appendMany, the first included. */
const appendAttemptsMax = 5;
const appendRetryDelayMs = 100;

/**
 * Appends `count` unique valuesets `${prefix}${n}` with `concurrency` calls in
 * flight until `stopAt`, and records each acknowledged index. An append that
 * fails with a retryable error is sent again, as a client would, because a
 * leader can step down on a loaded machine. Members store each valueset once.
 * `failed` counts the appends that failed on every attempt.
 */
export async function appendMany(client: IngestClient, prefix: string, count: number, concurrency: number, stopAt = Infinity): Promise<LoadResult> {
  const acknowledged = new Map<string, number>();
  let failed = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && Date.now() < stopAt) {
      const valueset = `${prefix}${next++}`;
      for (let attempt = 1; ; attempt++) {
        try {
          const result = await client.append(valueset, 5000);
          acknowledged.set(valueset, result.index);
          break;
        } catch (err) {
          if (!isRetryableAppendError(err) || attempt === appendAttemptsMax || Date.now() >= stopAt) {
            failed++;
            break;
          }
          await sleep(appendRetryDelayMs);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { acknowledged, failed };
}

/** Reads every message of one member through Read. */
export async function readAll(target: string): Promise<{ index: number; valueset: string }[]> {
  const client = connectIngest(target);
  const messages: { index: number; valueset: string }[] = [];
  try {
    for await (const m of client.read(0, 0, false)) messages.push({ index: m.index, valueset: m.valueset });
  } finally {
    client.close();
  }
  return messages;
}

export interface FetchOutcome {
  readonly code: number;
  readonly snapshotIndex: number;
  readonly ms: number;
}

/**
 * Calls Peer.FetchSnapshot on a member directly and drops the data. Returns
 * the status code, the index of the snapshot sent (0 when none) and the time.
 */
export function fetchPeerSnapshot(address: string, minIndex: number): Promise<FetchOutcome> {
  const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
  const client = new Peer(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    FetchSnapshot(request: object, options: grpc.CallOptions): grpc.ClientReadableStream<{ index: number }>;
  };
  const started = Date.now();
  return new Promise((resolve) => {
    let snapshotIndex = 0;
    const call = client.FetchSnapshot({ from: 'test', minIndex }, { deadline: Date.now() + 20_000 });
    call.on('data', (chunk: { index: number }) => {
      snapshotIndex ||= Number(chunk.index);
    });
    call.on('status', (status: grpc.StatusObject) => {
      client.close();
      resolve({ code: status.code, snapshotIndex, ms: Date.now() - started });
    });
    call.on('error', () => undefined);
  });
}

/**
 * Makes the member at gRPC `address` save a snapshot file at or above
 * `minIndex`, as it does for a follower that needs one. Requests one with
 * FetchSnapshot until a call succeeds. Returns the index sent.
 */
export async function saveSnapshotFile(address: string, minIndex: number): Promise<number> {
  return waitFor(`a snapshot file at or above ${minIndex} on ${address}`, async () => {
    const outcome = await fetchPeerSnapshot(address, minIndex);
    if (outcome.code === grpc.status.OK) return outcome.snapshotIndex;
    await sleep(100);
    return null;
  });
}
