// The nemesis of the set test. From a seed, it picks one fault at a time:
// SIGKILL or SIGSTOP of a member or of the leader, SIGKILL of a majority, or a
// network partition. It keeps the fault for a while, undoes it, lets the
// cluster recover, and logs each step as a JSON line. The same seed gives the
// same sequence of choices, but which member leads at each step depends on timing.
import * as fs from 'node:fs';
import type { NamespaceNetwork } from '../../src/cluster/netns';
import { seededRandom } from '../../src/node/random';
import type { PlacedCluster } from './placed-cluster';
import type { ProbeAgent } from './probe-agent';

/** How long a fault lasts, and the quiet time after it, in milliseconds. */
const holdMsMin = 1000;
const holdMsMax = 4000;
const quietMsMin = 1000;
const quietMsMax = 3000;

interface Fault {
  readonly name: string;
  /** Whether the fault needs a namespace network. */
  readonly network: boolean;
  /** Applies the fault; returns what undoes it and a description for the log. */
  readonly apply: () => Promise<{ undo: () => Promise<void> | void; detail: string }>;
}

export class Nemesis {
  private readonly random: () => number;
  private readonly faults: readonly Fault[];

  constructor(
    readonly seed: number,
    private readonly cluster: PlacedCluster,
    private readonly network: NamespaceNetwork | null,
    private readonly agent: ProbeAgent,
    private readonly logFile: string,
  ) {
    this.random = seededRandom(seed);
    this.faults = this.buildFaults().filter((f) => !f.network || network !== null);
  }

  /** Applies faults one after the other until `untilMs` (a Date.now() time). */
  async run(untilMs: number): Promise<void> {
    while (Date.now() < untilMs) {
      const fault = this.faults[Math.floor(this.random() * this.faults.length)]!;
      const holdMs = this.between(holdMsMin, holdMsMax);
      const quietMs = this.between(quietMsMin, quietMsMax);
      const { undo, detail } = await fault.apply();
      this.log({ type: 'start', fault: fault.name, detail, holdMs });
      await sleep(holdMs);
      await undo();
      this.log({ type: 'stop', fault: fault.name });
      await sleep(quietMs);
    }
  }

  /** Heals the network, continues paused members and starts stopped ones. */
  healAll(): void {
    this.network?.heal();
    for (const id of this.cluster.memberIds) {
      this.cluster.resume(id);
      this.cluster.start(id);
    }
    this.log({ type: 'heal-all' });
  }

  private buildFaults(): Fault[] {
    return [
      { name: 'kill-one', network: false, apply: async () => this.kill([this.pick(this.cluster.memberIds)]) },
      { name: 'kill-leader', network: false, apply: async () => this.kill([await this.leaderOrAny()]) },
      { name: 'kill-majority', network: false, apply: async () => this.kill(this.majority()) },
      { name: 'pause-one', network: false, apply: async () => this.pause(this.pick(this.cluster.memberIds)) },
      { name: 'pause-leader', network: false, apply: async () => this.pause(await this.leaderOrAny()) },
      { name: 'partition-halves', network: true, apply: async () => this.split(this.shuffled(this.cluster.memberIds)) },
      { name: 'partition-leader', network: true, apply: async () => this.isolate(await this.leaderOrAny()) },
      { name: 'partition-one', network: true, apply: async () => this.isolate(this.pick(this.cluster.memberIds)) },
    ];
  }

  private async kill(ids: readonly string[]): Promise<{ undo: () => void; detail: string }> {
    await Promise.all(ids.map((id) => this.cluster.stop(id, 'SIGKILL')));
    return { undo: () => ids.forEach((id) => this.cluster.start(id)), detail: ids.join(',') };
  }

  private pause(id: string): { undo: () => void; detail: string } {
    this.cluster.pause(id);
    return { undo: () => this.cluster.resume(id), detail: id };
  }

  private split(order: readonly string[]): { undo: () => void; detail: string } {
    const half = Math.floor(order.length / 2);
    const groups = [order.slice(0, half), order.slice(half)];
    this.network!.partition(groups);
    return { undo: () => this.network!.heal(), detail: groups.map((g) => g.join(',')).join(' | ') };
  }

  private isolate(id: string): { undo: () => void; detail: string } {
    const others = this.cluster.memberIds.filter((m) => m !== id);
    this.network!.partition([[id], others]);
    return { undo: () => this.network!.heal(), detail: `${id} | ${others.join(',')}` };
  }

  /** Returns the leader the members report, or a random member when none is known. */
  private async leaderOrAny(): Promise<string> {
    const statuses = await this.agent.statuses(this.cluster.placement.members.map((m) => m.clientHttp));
    const leader = statuses.find((s) => s?.role === 'leader');
    return leader?.id ?? this.pick(this.cluster.memberIds);
  }

  private majority(): string[] {
    const count = Math.floor(this.cluster.memberIds.length / 2) + 1;
    return this.shuffled(this.cluster.memberIds).slice(0, count);
  }

  private pick(ids: readonly string[]): string {
    return ids[Math.floor(this.random() * ids.length)]!;
  }

  private shuffled(ids: readonly string[]): string[] {
    const copy = [...ids];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }

  private between(min: number, max: number): number {
    return Math.round(min + this.random() * (max - min));
  }

  private log(event: Record<string, unknown>): void {
    fs.appendFileSync(this.logFile, `${JSON.stringify({ ...event, timeMs: Date.now() })}\n`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
