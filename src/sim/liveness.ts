import type { Cluster } from './cluster';
import type { Member } from './member';
import { TIME_UNITS_PER_TICK, type NetworkFaults } from './network';
import type { Rng } from './rng';
import { InvariantViolation } from './violation';

/** The network once healed: no loss, duplication or late messages, short delays. */
export const HEALED_NETWORK: NetworkFaults = {
  lossRate: 0,
  duplicateRate: 0,
  delayUnitsMin: 1,
  delayUnitsMax: TIME_UNITS_PER_TICK / 2,
  lateRate: 0,
  lateUnitsMax: 0,
};

/** Values proposed after healing, which must commit everywhere. */
const FRESH_VALUE_COUNT = 3;

/** Returns true when one leader leads every up member and all logs are committed and applied. */
export function isConverged(cluster: Cluster): boolean {
  const leader = cluster.leader();
  const leaderStatus = leader?.core?.status();
  if (leaderStatus === undefined) return false;
  return cluster.upMembers().every((member) => {
    const status = member.core?.status();
    return (
      status !== undefined &&
      status.term === leaderStatus.term &&
      status.leaderId === leaderStatus.id &&
      status.lastLogIndex === leaderStatus.lastLogIndex &&
      status.commitIndex === leaderStatus.lastLogIndex &&
      status.appliedIndex === leaderStatus.lastLogIndex
    );
  });
}

/**
 * Heals the network, stops crashes and restarts crashed members: all of them,
 * or just enough for a majority. Then, within `ticksMax` ticks, a leader must
 * be elected, every pending entry must commit on every up member, and fresh
 * proposals must commit too. Throws an InvariantViolation otherwise.
 */
export function checkLiveness(cluster: Cluster, rng: Rng, ticksMax: number): void {
  cluster.network.heal();
  cluster.network.faults = HEALED_NETWORK;
  cluster.readyCrashRate = 0;
  cluster.newLeaderCrashRate = 0;
  cluster.leaderCommitCrashRate = 0;
  // Readies that wait for their fsync drew their crash points before healing, so those go too.
  for (const member of cluster.members) {
    if (member.inflight !== null && member.inflight.crashAt !== null) member.inflight = { ...member.inflight, crashAt: null };
  }
  restartMajority(cluster, rng);
  cluster.log(`liveness: network healed, up ${cluster.upMembers().map((member) => member.id).join(',')}`);
  let batch: readonly string[] | null = null;
  const done = (): boolean => {
    if (!isConverged(cluster)) return false;
    if (batch !== null && allApplied(cluster, batch)) return true;
    // Converged without the batch applied means it was never accepted or its
    // entries were overwritten when leadership changed, so propose a new one.
    batch = Array.from({ length: FRESH_VALUE_COUNT }, () => cluster.ledger.nextValue());
    const leader = cluster.leader();
    if (leader !== undefined) cluster.propose(leader.id, batch);
    return false;
  };
  if (!cluster.runUntil(done, ticksMax)) {
    throw new InvariantViolation(
      'liveness',
      `no leader committed every entry and fresh proposals within ${ticksMax} ticks of healing (${describeMembers(cluster)})`,
    );
  }
  cluster.log('liveness: converged');
}

function restartMajority(cluster: Cluster, rng: Rng): void {
  const down = cluster.members.filter((member) => !member.isUp);
  // A member that lost its disk votes for no one until a leader caught it up,
  // so with one, only all the others together make sure of a majority.
  const rejoining = cluster.members.some((member) => member.rejoining);
  const keepDownMax = !rejoining && rng.chance(0.5) ? Math.floor((cluster.members.length - 1) / 2) : 0;
  const keepDown = rng.shuffle(down).slice(0, keepDownMax);
  for (const member of down) {
    if (!keepDown.includes(member)) cluster.restart(member.id);
  }
}

function allApplied(cluster: Cluster, values: readonly string[]): boolean {
  return cluster.upMembers().every((member) => values.every((value) => hasApplied(member, value)));
}

function hasApplied(member: Member, value: string): boolean {
  return member.applied.some((entry) => entry.data.length > 0 && Buffer.from(entry.data).toString('utf8') === value);
}

function describeMembers(cluster: Cluster): string {
  return cluster.members
    .map((member) => {
      const status = member.core?.status();
      if (status === undefined) return `${member.id} down`;
      return `${member.id} ${status.role} t${status.term} last=${status.lastLogIndex} commit=${status.commitIndex} applied=${status.appliedIndex}`;
    })
    .join('; ');
}
