import type { NodeId } from '../consensus/types';
import type { Cluster } from './cluster';
import { CRASH_POINTS } from './driver';
import type { Rng } from './rng';

/** How often each fault and input happens, per tick of a random run. */
export interface ChaosRates {
  readonly proposalRate: number;
  readonly partitionRate: number;
  readonly healRate: number;
  readonly crashRate: number;
  readonly compactRate: number;
  /** Probability per tick that the leader starts handing its role to a random follower. */
  readonly transferRate?: number;
  /**
   * Probability per tick that a member loses its disk (Cluster.wipe()). It
   * stays down for more than twice the election timeout, as replog's
   * --rejoin requires, and no other member loses its disk until it caught up.
   */
  readonly wipeRate?: number;
  /** Maximum time a crashed member stays down, in ticks. */
  readonly downTicksMax: number;
  /**
   * Probability that a new leader is crashed or cut off within
   * SHORT_LEADER_TICKS_MAX of its election, often while it is still copying
   * entries of older terms to followers that lag.
   */
  readonly shortLeaderRate: number;
}

/** Maximum life of a leader that the schedule cuts short, in ticks. */
const SHORT_LEADER_TICKS_MAX = 3;

/**
 * Uncommitted entries a leader may have before clients hold back, as a real
 * member bounds its proposal queue. Without it a slow configuration (one entry
 * per append, one append in flight, heavy loss) builds a backlog that no
 * fixed liveness bound covers.
 */
const UNCOMMITTED_ENTRIES_MAX = 64;

/** Every partition shape a random run uses, besides healing. */
const PARTITION_KINDS = ['halves', 'isolateLeader', 'bridge'] as const;

/**
 * The fault and client schedule of a random run. Each tick it may propose,
 * partition or heal the network, crash or restart members and compact logs;
 * every choice comes from the cluster's generator.
 */
export class ChaosSchedule {
  /** Tick at which each crashed member restarts. */
  private readonly restartAt = new Map<NodeId, number>();
  private tick = 0;
  /** The highest term in which a leader was seen, so each new one is noticed once. */
  private leaderTermSeen = 0;
  /** A leader to cut short: who, in which term, and at which tick. */
  private shortLeader: { readonly id: NodeId; readonly term: number; readonly tick: number } | null = null;

  constructor(
    private readonly cluster: Cluster,
    private readonly rates: ChaosRates,
  ) {}

  private get rng(): Rng {
    return this.cluster.rng;
  }

  /** Makes this tick's decisions; the caller then runs the cluster for one tick. */
  step(): void {
    this.tick += 1;
    this.restartDue();
    this.cutShortLeaders();
    if (this.rng.chance(this.rates.proposalRate)) this.propose();
    if (this.rng.chance(this.rates.partitionRate)) this.partition();
    if (!this.cluster.network.isHealed() && this.rng.chance(this.rates.healRate)) this.heal();
    if (this.rng.chance(this.rates.crashRate)) this.crash();
    if (this.rng.chance(this.rates.compactRate)) this.compact();
    // Drawn only when set, so that runs without handovers keep their schedules.
    const transferRate = this.rates.transferRate ?? 0;
    if (transferRate > 0 && this.rng.chance(transferRate)) this.transfer();
    const wipeRate = this.rates.wipeRate ?? 0;
    if (wipeRate > 0 && this.rng.chance(wipeRate)) this.wipe();
  }

  /**
   * Empties the disk of a random member, unless one is still rejoining. The
   * member restarts after more than twice the longest election timeout, and
   * by then any leader cut off from the others has stepped down (check-quorum).
   */
  private wipe(): void {
    if (this.cluster.members.some((member) => member.rejoining)) return;
    const victim = this.rng.pick(this.cluster.members);
    this.cluster.wipe(victim.id);
    const electionTimeoutMaxTicks = 2 * this.cluster.electionTimeoutTicks;
    const downTicks = 2 * electionTimeoutMaxTicks + 1 + this.rng.int(0, this.rates.downTicksMax);
    const restartAt = Math.max(this.restartAt.get(victim.id) ?? 0, this.tick + downTicks);
    this.restartAt.set(victim.id, restartAt);
  }

  /** Has the leader, if any, hand its role to a random other member. */
  private transfer(): void {
    const leader = this.cluster.leader();
    if (leader === undefined) return;
    const others = this.cluster.members.filter((member) => member.id !== leader.id);
    this.cluster.transferLeadership(leader.id, this.rng.pick(others).id);
  }

  /** Proposes one to three new values, mostly at a leader. */
  propose(): void {
    const up = this.cluster.upMembers();
    if (up.length === 0) return;
    const leader = this.cluster.leader();
    const target = leader !== undefined && this.rng.chance(0.8) ? leader : this.rng.pick(up);
    const status = target.core?.status();
    if (status === undefined || status.lastLogIndex - status.commitIndex > UNCOMMITTED_ENTRIES_MAX) return;
    const values = Array.from({ length: this.rng.int(1, 3) }, () => this.cluster.ledger.nextValue());
    this.cluster.propose(target.id, values);
  }

  /** Picks some new leaders to end early, and ends those whose time has come. */
  private cutShortLeaders(): void {
    const leader = this.cluster.leader();
    const status = leader?.core?.status();
    if (leader !== undefined && status !== undefined && status.term > this.leaderTermSeen) {
      this.leaderTermSeen = status.term;
      if (this.rng.chance(this.rates.shortLeaderRate)) {
        this.shortLeader = { id: leader.id, term: status.term, tick: this.tick + this.rng.int(0, SHORT_LEADER_TICKS_MAX) };
      }
    }
    const target = this.shortLeader;
    if (target === null || target.tick > this.tick) return;
    this.shortLeader = null;
    const targetStatus = this.cluster.member(target.id).core?.status();
    if (targetStatus?.role !== 'leader' || targetStatus.term !== target.term) return;
    if (this.rng.chance(0.5)) {
      this.cluster.crash(target.id, this.rng.pick(CRASH_POINTS));
    } else {
      this.cluster.network.isolate(target.id);
      this.cluster.log(`partition isolateLeader ${this.cluster.network.describe()}`);
    }
  }

  private partition(): void {
    const ids = this.cluster.members.map((member) => member.id);
    const kind = this.rng.pick(PARTITION_KINDS);
    if (kind === 'isolateLeader') {
      const leader = this.cluster.leader();
      this.cluster.network.isolate(leader?.id ?? this.rng.pick(ids));
    } else if (kind === 'bridge') {
      const [bridge, ...others] = this.rng.shuffle(ids) as [NodeId, ...NodeId[]];
      const cut = this.rng.int(1, others.length - 1);
      this.cluster.network.bridge(bridge, others.slice(0, cut), others.slice(cut));
    } else {
      const shuffled = this.rng.shuffle(ids);
      const cut = this.rng.int(1, shuffled.length - 1);
      this.cluster.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
    }
    this.cluster.log(`partition ${kind} ${this.cluster.network.describe()}`);
  }

  private heal(): void {
    this.cluster.network.heal();
    this.cluster.log('network healed');
  }

  /** Crashes the leader half of the time, otherwise any member that is up. */
  private crash(): void {
    const up = this.cluster.upMembers();
    if (up.length === 0) return;
    const leader = this.cluster.leader();
    const victim = leader !== undefined && this.rng.chance(0.5) ? leader : this.rng.pick(up);
    this.cluster.crash(victim.id, this.rng.pick(CRASH_POINTS));
  }

  /** Restarts members whose downtime is over; draws a downtime for newly crashed ones. */
  private restartDue(): void {
    for (const member of this.cluster.members) {
      if (member.isUp || this.restartAt.has(member.id)) continue;
      this.restartAt.set(member.id, this.tick + this.rng.int(0, this.rates.downTicksMax));
    }
    for (const [id, tick] of [...this.restartAt]) {
      if (tick > this.tick) continue;
      this.restartAt.delete(id);
      this.cluster.restart(id);
    }
  }

  /** Compacts a random member's log at a random applied index, keeping a few entries. */
  private compact(): void {
    const up = this.cluster.upMembers();
    if (up.length === 0) return;
    const member = this.rng.pick(up);
    const status = member.core?.status();
    if (status === undefined || status.appliedIndex <= status.snapshotIndex) return;
    const index = this.rng.int(status.snapshotIndex + 1, status.appliedIndex);
    this.cluster.compact(member.id, index, this.rng.int(0, 3));
  }
}
