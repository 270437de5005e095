// Helpers shared by the fault tests that run on 127.0.0.1 with LocalCluster.
// They start a cluster with hooks around the member processes, start a member
// with its own environment, record every append's outcome, check that
// acknowledged messages are stored, and stop a test file that hangs.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderHaproxyConfig } from '../../src/cli/haproxy-config';
import { connectIngest, errorCode, statusCodeName, type IngestClient, type StoredMessage } from '../../src/client';
import { cliPath, LocalCluster, memberNodeFlags } from '../../src/cluster/local-cluster';
import { fastTimingArgs, readAll, startUntilServing, type TestCluster } from '../e2e/harness';

export interface FaultClusterOptions {
  /** Start of the temp folder's name; default `replog-fault-`. */
  readonly dirPrefix?: string;
  readonly size?: number;
  readonly haproxy?: boolean;
  readonly memberArgs?: readonly string[];
  /** Runs after the folders and ports are chosen and before any member starts. */
  readonly beforeStart?: (cluster: LocalCluster) => void;
  /** Starts member `id` instead of LocalCluster.startMember, e.g. with startMemberWith. */
  readonly startMember?: (cluster: LocalCluster, id: string) => void;
  /** Runs after the processes are stopped and before the folder is deleted. */
  readonly afterStop?: () => void;
}

/** Starts a cluster like the e2e harness, with hooks around the member processes. */
export async function startFaultCluster(options: FaultClusterOptions = {}): Promise<TestCluster> {
  return startUntilServing(() => launchFaultCluster(options));
}

/** Starts the members and HAProxy in a new temp folder, running the hooks, without waiting for them. */
async function launchFaultCluster(options: FaultClusterOptions): Promise<TestCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), options.dirPrefix ?? 'replog-fault-'));
  const cluster = await LocalCluster.create({
    dataDir: dir,
    size: options.size ?? 3,
    basePort: 0,
    withHaproxy: options.haproxy ?? false,
    memberArgs: [...fastTimingArgs, ...(options.memberArgs ?? [])],
  });
  const close = async (): Promise<void> => {
    await cluster.stopAll('SIGKILL');
    options.afterStop?.();
    if (process.env['REPLOG_KEEP_TEST_DATA']) console.log(`kept test data in ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    options.beforeStart?.(cluster);
    for (const m of cluster.members) {
      if (options.startMember) options.startMember(cluster, m.id);
      else cluster.startMember(m.id);
    }
    let target = cluster.members.map((m) => m.grpc).join(',');
    if (options.haproxy) {
      const config = renderHaproxyConfig({ bindGrpc: cluster.haproxyAddress!, members: cluster.members });
      if (!cluster.startHaproxy(config)) throw new Error('haproxy is not installed: apt-get install -y haproxy');
      target = cluster.haproxyAddress!;
    }
    return { cluster, dir, target, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface MemberLaunch {
  /** Variables added to this process's environment for the member only. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * `replog node` flags after the id, addresses, peers and fast timing; the
   * cluster's own memberArgs are not added, so repeat them here when needed.
   */
  readonly extraArgs?: readonly string[];
}

/**
 * Starts member `id` like LocalCluster.startMember, with its own environment
 * added, and registers the process with the cluster so stopMember, pause,
 * resume and stopAll reach it.
 */
export function startMemberWith(cluster: LocalCluster, id: string, launch: MemberLaunch): ChildProcess {
  const spec = cluster.member(id);
  const out = fs.openSync(spec.logFile, 'a');
  const args = [...memberNodeFlags, cliPath, 'node', ...memberFlags(cluster, id), ...(launch.extraArgs ?? [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', out, out], env: { ...process.env, ...launch.env } });
  fs.closeSync(out);
  cluster.processes.set(id, child);
  child.on('exit', () => {
    if (cluster.processes.get(id) === child) cluster.processes.delete(id);
  });
  return child;
}

function memberFlags(cluster: LocalCluster, id: string): string[] {
  const spec = cluster.member(id);
  // The same flags as LocalCluster.startMember passes.
  return ['--id', id, '--data', spec.dataDir, '--grpc', spec.grpc, '--http', spec.http, '--peers', cluster.peersFlag, ...fastTimingArgs];
}

/** Outcomes of appends: acknowledged indexes by valueset, and errors counted by gRPC code name. */
export interface RecordedLoad {
  readonly acknowledged: Map<string, number>;
  readonly errors: Map<string, number>;
  /** Latency of each acknowledged append, in milliseconds. */
  readonly latenciesMs: number[];
}

export interface LoadOptions {
  readonly concurrency: number;
  /** Called before each append; the load ends when it returns true. */
  readonly done: () => boolean;
  readonly deadlineMs: number;
}

/** Returns a `done` function for LoadOptions that turns true after `ms` milliseconds. */
export function after(ms: number): () => boolean {
  const end = Date.now() + ms;
  return () => Date.now() >= end;
}

/** Appends `${prefix}${n}` with calls in flight until `done()`, recording every outcome. */
export async function recordAppends(client: IngestClient, prefix: string, options: LoadOptions): Promise<RecordedLoad> {
  const load: RecordedLoad = { acknowledged: new Map(), errors: new Map(), latenciesMs: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!options.done()) {
      const valueset = `${prefix}${next++}`;
      const started = performance.now();
      try {
        const result = await client.append(valueset, options.deadlineMs);
        load.acknowledged.set(valueset, result.index);
        load.latenciesMs.push(performance.now() - started);
      } catch (err) {
        const code = statusCodeName(errorCode(err));
        load.errors.set(code, (load.errors.get(code) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return load;
}

/** Lists acknowledged valuesets that the member at `grpc` does not store at their index. */
export async function missingOn(acknowledged: ReadonlyMap<string, number>, grpc: string): Promise<string[]> {
  const stored = new Map((await readAll(grpc)).map((m) => [m.valueset, m.index]));
  const missing: string[] = [];
  for (const [valueset, index] of acknowledged) {
    const at = stored.get(valueset);
    if (at !== index) missing.push(`${valueset}@${index} (found ${at ?? 'nothing'})`);
  }
  return missing;
}

/** Reads every message of the member at `grpc`, received_at_ms included. */
export async function readMessages(grpc: string): Promise<StoredMessage[]> {
  const client = connectIngest(grpc);
  const messages: StoredMessage[] = [];
  try {
    for await (const m of client.read(0, 0, false)) messages.push(m);
  } finally {
    client.close();
  }
  return messages;
}

/** Returns the p-th percentile (0..100) of `values` by nearest rank, or NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/**
 * Ends the process with status 1 if the test file runs longer than `limitMs`,
 * after `cleanup`; uvu has no time limit of its own.
 */
export function startWatchdog(file: string, limitMs: number, cleanup: () => void): NodeJS.Timeout {
  const timer = setTimeout(() => {
    console.error(`${file}: still running after ${limitMs} ms; stopping it`);
    cleanup();
    process.exit(1);
  }, limitMs);
  timer.unref();
  return timer;
}

/** Waits until the process `child` exits; returns its exit code (null after a signal). */
export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
