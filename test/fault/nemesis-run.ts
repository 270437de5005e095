// Setup and teardown of one nemesis run. It creates the namespace network
// (when permitted), the member processes, HAProxy, the probe agent, the
// workload process and a run folder for history and logs. Cleanup also runs
// when the test process exits early or receives SIGINT or SIGTERM.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  NamespaceNetwork,
  probeNamespaceSupport,
  removeLeftoverNamespaces,
} from '../../src/cluster/netns';
import { haproxyInstalled } from '../../src/cluster/local-cluster';
import type { MemberStatus } from '../../src/node/member';
import { fastTimingArgs } from '../e2e/harness';
import { PlacedCluster } from './placed-cluster';
import { loopbackPlacement, namespacePlacement, type ClusterPlacement } from './placement';
import { ProbeAgent } from './probe-agent';
import type { WorkloadOptions, WorkloadSummary } from './set-workload';

/** First word of every namespace name of these tests: `rl-<pid>-<member or hub>`. */
export const namespaceRoot = 'rl';

/** Snapshots every few thousand entries, so members that were down catch up by snapshot too. */
const memberArgs = [...fastTimingArgs, '--snapshot-threshold', '3000', '--snapshot-keep-entries', '500'];

/** How often convergence is polled, and how many equal polls in a row count as settled. */
const settlePollMs = 500;
const settledPollsMin = 3;

export interface RunOptions {
  readonly memberCount: number;
  readonly seed: number;
  /** Run on 127.0.0.1 without partitions even where namespaces work. */
  readonly loopbackOnly: boolean;
}

export class NemesisRun {
  /** Set when the run failed, so the run folder is kept. */
  keepFolder = false;
  private cleanedUp = false;
  private readonly exitHandler = (): void => this.cleanupNow();
  private readonly signalHandler = (signal: NodeJS.Signals): void => {
    console.error(`nemesis run interrupted by ${signal}; seed ${this.seed}, folder ${this.dir}`);
    this.keepFolder = true;
    this.cleanupNow();
    process.exit(1);
  };

  private constructor(
    readonly seed: number,
    readonly dir: string,
    readonly network: NamespaceNetwork | null,
    readonly cluster: PlacedCluster,
    readonly agent: ProbeAgent,
    /** The reason partitions are skipped; empty when the network is available. */
    readonly networkSkipReason: string,
  ) {
    process.on('exit', this.exitHandler);
    process.on('SIGINT', this.signalHandler);
    process.on('SIGTERM', this.signalHandler);
  }

  /** Creates the network (or falls back to 127.0.0.1), starts members, HAProxy and the agent. */
  static async start(options: RunOptions): Promise<NemesisRun> {
    if (!haproxyInstalled()) throw new Error('haproxy is not installed: apt-get install -y haproxy');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `replog-nemesis-${options.seed}-`));
    const ids = Array.from({ length: options.memberCount }, (_, i) => `n${i + 1}`);
    const prefix = `${namespaceRoot}-${process.pid}`;
    removeLeftoverNamespaces(namespaceRoot);
    const support = options.loopbackOnly
      ? { available: false, reason: 'REPLOG_NEMESIS_LOOPBACK is set' }
      : probeNamespaceSupport(prefix);
    let network: NamespaceNetwork | null = null;
    let placement: ClusterPlacement;
    if (support.available) {
      network = new NamespaceNetwork(prefix, ids, 1 + (process.pid % 254));
      network.create();
      placement = namespacePlacement(network);
    } else {
      placement = await loopbackPlacement(ids);
    }
    const cluster = new PlacedCluster(placement, dir, memberArgs);
    const agent = ProbeAgent.start(placement.clientCommandPrefix);
    const run = new NemesisRun(options.seed, dir, network, cluster, agent, support.reason);
    for (const id of ids) cluster.start(id);
    cluster.startHaproxy();
    return run;
  }

  get historyFile(): string {
    return path.join(this.dir, 'history.jsonl');
  }

  get nemesisLogFile(): string {
    return path.join(this.dir, 'nemesis.jsonl');
  }

  /** Fetches /status of every member, by id; members whose request failed are missing. */
  async statuses(): Promise<Map<string, MemberStatus>> {
    const members = this.cluster.placement.members;
    const replies = await this.agent.statuses(members.map((m) => m.clientHttp));
    const result = new Map<string, MemberStatus>();
    replies.forEach((status, i) => {
      if (status) result.set(members[i]!.id, status);
    });
    return result;
  }

  /** Waits until one leader is known to every member; throws after `timeoutMs`. */
  async waitForLeader(timeoutMs: number): Promise<MemberStatus> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const all = [...(await this.statuses()).values()];
      const leader = all.find((s) => s.role === 'leader');
      if (leader && all.length === this.cluster.memberIds.length && all.every((s) => s.leaderId === leader.id)) return leader;
      await sleep(settlePollMs / 5);
    }
    throw new Error(`no leader known to all members within ${timeoutMs} ms`);
  }

  /**
   * Waits until every member reports the same applied index (equal to its
   * commit index) and digest, unchanged over several polls in a row.
   */
  async waitSettled(timeoutMs: number): Promise<Map<string, MemberStatus>> {
    const deadline = Date.now() + timeoutMs;
    let previous = '';
    let equalPolls = 0;
    while (Date.now() < deadline) {
      const all = await this.statuses();
      const list = [...all.values()];
      const key = list.map((s) => `${s.appliedIndex}/${s.commitIndex}/${s.digest}`).join(' ');
      const agreed = list.length === this.cluster.memberIds.length &&
        list.every((s) => s.appliedIndex === s.commitIndex && s.digest === list[0]!.digest && s.appliedIndex === list[0]!.appliedIndex);
      if (!agreed) equalPolls = 0;
      else if (key === previous) equalPolls += 1;
      else equalPolls = 1;
      previous = key;
      if (equalPolls >= settledPollsMin) return all;
      await sleep(settlePollMs);
    }
    const last = [...(await this.statuses()).values()].map((s) => `${s.id}: applied ${s.appliedIndex}, commit ${s.commitIndex}`);
    throw new Error(`members did not settle within ${timeoutMs} ms: ${last.join('; ')}`);
  }

  /** Runs the set workload next to HAProxy until it ends; resolves with its summary. */
  runWorkload(options: Omit<WorkloadOptions, 'target' | 'historyFile'>): Promise<WorkloadSummary> {
    const full: WorkloadOptions = { ...options, target: this.cluster.placement.haproxyGrpc, historyFile: this.historyFile };
    const script = path.join(__dirname, 'set-workload.js');
    const words = [...this.cluster.placement.clientCommandPrefix, process.execPath, script, JSON.stringify(full)];
    const child = spawn(words[0]!, words.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return new Promise((resolve, reject) => {
      child.on('exit', (code) => {
        if (code === 0) resolve(JSON.parse(output.trim()) as WorkloadSummary);
        else reject(new Error(`set workload exited with code ${code}`));
      });
    });
  }

  /** Stops every process, removes the network, and deletes the run folder unless kept. */
  async close(): Promise<void> {
    await this.cluster.killAll();
    this.cleanupNow();
  }

  private cleanupNow(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    process.off('exit', this.exitHandler);
    process.off('SIGINT', this.signalHandler);
    process.off('SIGTERM', this.signalHandler);
    this.agent.close();
    this.cluster.killAllNow();
    this.network?.destroy();
    if (this.keepFolder || process.env['REPLOG_KEEP_TEST_DATA']) {
      console.log(`nemesis run with seed ${this.seed}: history, nemesis log and member logs kept in ${this.dir}`);
    } else {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
