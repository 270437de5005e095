// `replog experiment`: reproduces the prototype's experiments on a local
// cluster in one go. Phase 1 runs a steady load; phase 2 runs the same load
// while one follower is killed (SIGKILL) and later restarted; phase 3 appends
// as fast as the cluster answers. After each phase the load stops, the members
// are given time to converge, and the verify logic reads every member, checks
// its digest and compares the members, while an observer checks that every
// acknowledged append is stored by every member at its acknowledged index.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectIngest, type IngestClient } from '../client/ingest-client';
import { renderHaproxyConfig } from '../cli/haproxy-config';
import { fetchMemberStatus } from '../cli/status-fetch';
import type { MemberStatus } from '../cli/status-table';
import { haproxyInstalled, LocalCluster, type LocalMemberSpec } from '../cluster/local-cluster';
import { verifyCluster, type MessageRef, type VerifyResult } from '../verify/verify-cluster';
import { memberCheck } from '../verify/format';
import { AckChecker, AckLog, ValuesetScheme, type AckCheck } from './acks';
import { PhaseLoad, type LoadSpec, type LoadStats } from './load';

export interface ExperimentOptions {
  /** Scale of every duration: 1 = the original experiments' lengths. */
  readonly minutes: number;
  readonly dataDir: string;
  readonly size: number;
  /** Offered load of phases 1 and 2, messages per second. */
  readonly ratePerSecond: number;
  /** First port of the cluster's block; 0 = free ports. */
  readonly basePort: number;
  /** Phase 3: appends in flight. */
  readonly maxConcurrency: number;
  readonly maxMode: 'unary' | 'stream';
}

/** Durations at --minutes 1, in milliseconds. */
export const phasePlanMs = {
  steady: 60_000,
  beforeKill: 5_000,
  down: 40_000,
  afterRestart: 10_000,
  max: 60_000,
} as const;

/** Longest wait for the members to converge after a phase's load stops. */
const syncTimeoutMs = 120_000;
const leaderTimeoutMs = 30_000;
const streamsForMax = 8;

export interface PhaseMemberRow {
  readonly label: string;
  readonly role: string;
  readonly appliedIndex: number | null;
  readonly messageCount: number | null;
  readonly digest: string | null;
  readonly first: MessageRef | null;
  readonly last: MessageRef | null;
  readonly ack: AckCheck;
  readonly check: string;
}

export interface PhaseResult {
  readonly number: number;
  readonly title: string;
  readonly offered: string;
  readonly plannedLoadMs: number;
  readonly load: LoadStats | null;
  /** Events, in ms since the phase's load started. */
  readonly timeline: readonly { readonly atMs: number; readonly event: string }[];
  /** Time from the end of the load until the members were in sync; null when they never were. */
  readonly syncWaitMs: number | null;
  readonly verify: VerifyResult | null;
  readonly members: readonly PhaseMemberRow[];
  /** The member killed and restarted in phase 2, from then on. */
  readonly restarted: string | null;
  readonly missingOnRestarted: number | null;
  /** Phase 2: acknowledged while the member was down. */
  readonly acknowledgedWhileDown: number | null;
}

export interface ExperimentResult {
  readonly options: ExperimentOptions;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly haproxy: boolean;
  readonly target: string;
  readonly members: readonly LocalMemberSpec[];
  readonly phases: readonly PhaseResult[];
  readonly interrupted: boolean;
  readonly error: string | null;
  readonly passed: boolean;
  readonly verdict: string;
}

export interface ExperimentHooks {
  readonly signal: AbortSignal;
  readonly progress: (line: string) => void;
}

/** Runs the three phases; never throws, the result says what went wrong. */
export async function runExperiment(options: ExperimentOptions, hooks: ExperimentHooks): Promise<ExperimentResult> {
  const startedAt = new Date();
  const cluster = await LocalCluster.create({
    dataDir: options.dataDir,
    size: options.size,
    basePort: options.basePort,
    withHaproxy: true,
  });
  const run = new ExperimentRun(options, hooks, cluster);
  // Safety net: if this process dies before shutdown(), take the members with it.
  const killMembers = (): void => {
    for (const child of cluster.processes.values()) child.kill('SIGKILL');
  };
  process.once('exit', killMembers);
  let error: string | null = null;
  // Another cluster on these ports would take the load and pass for this one.
  const busy = await cluster.busyAddresses();
  if (busy.length > 0) {
    error = `${busy.join(', ')} already in use (another cluster?); stop it or pick other ports with --base-port`;
  } else {
    try {
      await run.execute();
    } catch (err) {
      if (!hooks.signal.aborted) error = err instanceof Error ? err.message : String(err);
    }
  }
  try {
    await run.shutdown();
  } catch (err) {
    error ??= `stopping the cluster failed: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    process.off('exit', killMembers);
  }
  const interrupted = hooks.signal.aborted;
  const { passed, verdict } = judge(run.phases, interrupted, error);
  return {
    options,
    startedAt,
    finishedAt: new Date(),
    haproxy: run.haproxy,
    target: run.target,
    members: cluster.members,
    phases: run.phases,
    interrupted,
    error,
    passed,
    verdict,
  };
}

class ExperimentRun {
  readonly phases: PhaseResult[] = [];
  haproxy = false;
  target = '';
  private client: IngestClient | null = null;
  private currentLoad: PhaseLoad | null = null;
  private readonly scheme = new ValuesetScheme();
  private readonly ackLogs = new Map<number, AckLog>();
  private restarted: string | null = null;

  constructor(
    private readonly options: ExperimentOptions,
    private readonly hooks: ExperimentHooks,
    private readonly cluster: LocalCluster,
  ) {}

  private get signal(): AbortSignal {
    return this.hooks.signal;
  }

  private scaled(ms: number): number {
    return Math.round(ms * this.options.minutes);
  }

  async execute(): Promise<void> {
    this.cluster.startAll();
    this.haproxy = haproxyInstalled()
      && this.cluster.startHaproxy(renderHaproxyConfig({ bindGrpc: this.cluster.haproxyAddress!, members: this.cluster.members }));
    this.target = this.haproxy ? this.cluster.haproxyAddress! : this.cluster.members.map((m) => m.grpc).join(',');
    this.hooks.progress(
      `cluster of ${this.cluster.members.length} members in ${this.options.dataDir}; clients go to ` +
        (this.haproxy ? `HAProxy at ${this.target}` : `${this.target} (HAProxy not installed: client round robin)`),
    );
    await this.waitForLeader();
    this.client = connectIngest(this.target);
    await this.client.waitForReady(10_000);
    await this.phaseSteady();
    await this.phaseMemberDown();
    await this.phaseMax();
  }

  async shutdown(): Promise<void> {
    if (this.currentLoad) await this.currentLoad.stop(true).catch(() => undefined);
    this.client?.close();
    await this.cluster.stopAll();
  }

  private steadySpec(): LoadSpec {
    return { ratePerSecond: this.options.ratePerSecond, concurrency: 2_000, mode: 'unary', streams: 1, deadlineMs: 5_000, drainMs: 15_000 };
  }

  private startLoad(phase: number, spec: LoadSpec): PhaseLoad {
    const log = new AckLog();
    this.ackLogs.set(phase, log);
    this.currentLoad = new PhaseLoad(this.client!, spec, log, (sequence) => this.scheme.make(phase, sequence));
    return this.currentLoad;
  }

  private async stopLoad(load: PhaseLoad): Promise<LoadStats> {
    const stats = await load.stop();
    this.currentLoad = null;
    return stats;
  }

  private async phaseSteady(): Promise<void> {
    const plannedLoadMs = this.scaled(phasePlanMs.steady);
    this.hooks.progress(`phase 1 "in sync": ${this.options.ratePerSecond} messages/s for ${seconds(plannedLoadMs)}`);
    const load = this.startLoad(1, this.steadySpec());
    await sleep(plannedLoadMs, undefined, { signal: this.signal });
    const stats = await this.stopLoad(load);
    await this.finishPhase(1, 'in sync', `${this.options.ratePerSecond} messages/s`, plannedLoadMs, stats, [], null);
  }

  private async phaseMemberDown(): Promise<void> {
    const lead = this.scaled(phasePlanMs.beforeKill);
    const down = this.scaled(phasePlanMs.down);
    const tail = this.scaled(phasePlanMs.afterRestart);
    const statuses = await this.statuses();
    const leaderId = [...statuses.values()].find((s) => s.role === 'leader')?.id;
    const victim = [...this.cluster.members].reverse().find((m) => m.id !== leaderId)!;
    this.hooks.progress(
      `phase 2 "one member down": ${this.options.ratePerSecond} messages/s; follower ${victim.id} killed ` +
        `after ${seconds(lead)}, down ${seconds(down)}, load goes on ${seconds(tail)} after its restart`,
    );
    const timeline: { atMs: number; event: string }[] = [];
    const started = performance.now();
    const mark = (event: string): void => {
      timeline.push({ atMs: performance.now() - started, event });
      this.hooks.progress(`  ${event}`);
    };
    const load = this.startLoad(2, this.steadySpec());
    mark('load started');
    await sleep(lead, undefined, { signal: this.signal });
    await this.cluster.stopMember(victim.id, 'SIGKILL');
    this.restarted = victim.id;
    const ackedAtKill = load.acknowledgedCount;
    mark(`${victim.id} killed (SIGKILL)`);
    await sleep(down, undefined, { signal: this.signal });
    const backlog = Math.max(0, ...[...(await this.statuses()).values()].map((s) => s.commitIndex));
    this.cluster.startMember(victim.id);
    const acknowledgedWhileDown = load.acknowledgedCount - ackedAtKill;
    mark(`${victim.id} restarted; ${acknowledgedWhileDown} appends acknowledged while it was down, commit index ${backlog}`);
    const catchUp = this.watchCatchUp(victim.id, backlog, mark);
    await sleep(tail, undefined, { signal: this.signal });
    const stats = await this.stopLoad(load);
    mark('load stopped');
    try {
      await this.finishPhase(
        2, 'one member down', `${this.options.ratePerSecond} messages/s`, lead + down + tail, stats, timeline, acknowledgedWhileDown,
      );
    } finally {
      catchUp.stop();
    }
  }

  /** Marks when `id` has applied `index`, the commit index when it restarted. */
  private watchCatchUp(id: string, index: number, mark: (event: string) => void): { stop(): void } {
    let stopped = false;
    const restartedAt = performance.now();
    void (async () => {
      while (!stopped && !this.signal.aborted) {
        const status = (await this.statuses()).get(id);
        if (status && status.appliedIndex >= index) {
          mark(`${id} caught up: applied index ${status.appliedIndex} >= ${index}, ${seconds(performance.now() - restartedAt)} after its restart`);
          return;
        }
        await sleep(100);
      }
    })();
    return { stop: () => (stopped = true) };
  }

  private async phaseMax(): Promise<void> {
    const plannedLoadMs = this.scaled(phasePlanMs.max);
    const shape = this.options.maxMode === 'unary'
      ? `${this.options.maxConcurrency} unary Append calls in flight`
      : `${streamsForMax} AppendStream calls, ${this.options.maxConcurrency} appends in flight`;
    this.hooks.progress(`phase 3 "load test": as fast as possible (${shape}) for ${seconds(plannedLoadMs)}`);
    const load = this.startLoad(3, {
      ratePerSecond: 0,
      concurrency: this.options.maxConcurrency,
      mode: this.options.maxMode,
      streams: streamsForMax,
      deadlineMs: 10_000,
      drainMs: 15_000,
    });
    await sleep(plannedLoadMs, undefined, { signal: this.signal });
    const stats = await this.stopLoad(load);
    await this.finishPhase(3, 'load test', `maximum (${shape})`, plannedLoadMs, stats, [], null);
  }

  /** Waits for the members to converge, verifies them and records the phase. */
  private async finishPhase(
    number: number,
    title: string,
    offered: string,
    plannedLoadMs: number,
    load: LoadStats,
    timeline: { atMs: number; event: string }[],
    acknowledgedWhileDown: number | null,
  ): Promise<PhaseResult> {
    this.hooks.progress(
      `  load: ${load.acknowledged} acknowledged (${load.acknowledgedPerSecond.toFixed(1)} messages/s), ${load.failed} given up; waiting for the members to converge`,
    );
    const syncStart = performance.now();
    const inSync = await this.waitInSync();
    const syncWaitMs = inSync ? performance.now() - syncStart : null;
    const verifyStart = performance.now();
    const checker = new AckChecker(this.scheme, this.ackLogs);
    const verify = await verifyCluster(
      this.cluster.members.map((m) => ({ id: m.id, grpc: m.grpc, http: m.http })),
      { retries: 5, retryDelayMs: 500, allowBusy: false, signal: this.signal, observer: checker },
    );
    const verifyMs = performance.now() - verifyStart;
    const members = verify.members.map((m, k): PhaseMemberRow => ({
      label: m.label,
      role: m.before?.role ?? 'down',
      appliedIndex: m.before?.appliedIndex ?? null,
      messageCount: m.before?.messageCount ?? null,
      digest: m.before?.digest ?? null,
      first: m.first,
      last: m.last,
      ack: checker.result(k),
      check: memberCheck(m),
    }));
    const restartedRow = members.find((m) => m.label === this.restarted);
    const result: PhaseResult = {
      number,
      title,
      offered,
      plannedLoadMs,
      load,
      timeline,
      syncWaitMs,
      verify,
      members,
      restarted: this.restarted,
      missingOnRestarted: restartedRow ? restartedRow.ack.missing : null,
      acknowledgedWhileDown,
    };
    this.phases.push(result);
    this.hooks.progress(`  ${verify.verdict} (${seconds(verifyMs)} to verify)`);
    return result;
  }

  private async statuses(): Promise<Map<string, MemberStatus>> {
    const probes = await Promise.all(this.cluster.members.map((m) => fetchMemberStatus(m.http, 1_000)));
    const result = new Map<string, MemberStatus>();
    probes.forEach((p, k) => {
      if ('status' in p) result.set(this.cluster.members[k]!.id, p.status);
    });
    return result;
  }

  private async waitForLeader(): Promise<void> {
    const deadline = performance.now() + leaderTimeoutMs;
    for (;;) {
      const all = [...(await this.statuses()).values()];
      const leaders = all.filter((s) => s.role === 'leader');
      if (all.length === this.cluster.members.length && leaders.length === 1 && all.every((s) => s.leaderId === leaders[0]!.id)) return;
      if (performance.now() > deadline) throw new Error(`no leader elected within ${seconds(leaderTimeoutMs)}`);
      await sleep(100, undefined, { signal: this.signal });
    }
  }

  /** True once every member has applied everything committed, at the same index and digest. */
  private async waitInSync(): Promise<boolean> {
    const deadline = performance.now() + syncTimeoutMs;
    for (;;) {
      const all = [...(await this.statuses()).values()];
      const first = all[0];
      const same = first !== undefined && all.length === this.cluster.members.length && all.every(
        (s) => s.appliedIndex === first.appliedIndex && s.commitIndex === s.appliedIndex
          && s.digest === first.digest && s.messageCount === first.messageCount,
      );
      if (same) return true;
      if (performance.now() > deadline) return false;
      await sleep(100, undefined, { signal: this.signal });
    }
  }
}

function judge(phases: readonly PhaseResult[], interrupted: boolean, error: string | null): { passed: boolean; verdict: string } {
  const missing = phases.at(-1)?.members.reduce((sum, m) => sum + m.ack.missing + m.ack.misplaced, 0) ?? 0;
  const last = phases.at(-1);
  const failures: string[] = [];
  if (interrupted) failures.push(`interrupted after ${phases.length} of 3 phases`);
  if (error !== null) failures.push(`error: ${error}`);
  for (const p of phases) {
    if (p.syncWaitMs === null) failures.push(`phase ${p.number}: members did not converge within ${seconds(syncTimeoutMs)}`);
    if (p.verify && !p.verify.ok) failures.push(`phase ${p.number}: ${p.verify.verdict}`);
    const phaseMissing = p.members.reduce((sum, m) => sum + m.ack.missing + m.ack.misplaced, 0);
    if (phaseMissing > 0) failures.push(`phase ${p.number}: ${phaseMissing} acknowledged messages missing or misplaced`);
  }
  if (failures.length > 0) return { passed: false, verdict: `FAIL: ${failures.join('; ')}` };
  const acknowledged = phases.reduce((sum, p) => sum + (p.load?.acknowledged ?? 0), 0);
  return {
    passed: true,
    verdict: `PASS: all ${last!.members.length} members identical after every phase ` +
      `(${last!.members[0]!.messageCount} messages, digest ${last!.members[0]!.digest!.slice(0, 16)}); ` +
      `${missing} of ${acknowledged} acknowledged messages missing; missing on the restarted member ${last!.restarted}: ${last!.missingOnRestarted}`,
  };
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
