// Shared steps of the simulator scenarios: build a cluster, wait for a leader,
// commit values, and explain a failure with the run's trace.
import { Cluster, CORE_SETTINGS_DEFAULT, type ClusterOptions, type CoreSettings } from '../../src/sim/cluster';
import type { Member } from '../../src/sim/member';
import { isConverged } from '../../src/sim/liveness';
import { RELIABLE_NETWORK } from '../../src/sim/network';

/** Election timeouts a healthy cluster gets to elect a leader. */
export const ELECTION_TICKS_MAX = 10 * CORE_SETTINGS_DEFAULT.electionTimeoutTicks;
/** Ticks a healthy cluster gets to commit and apply a value everywhere. */
export const COMMIT_TICKS_MAX = 60;
/** Trace lines appended to a failed scenario's error. */
const TRACE_LINES_SHOWN = 80;

export interface ScenarioOptions extends Partial<Omit<ClusterOptions, 'core'>> {
  readonly core?: Partial<CoreSettings>;
}

/** Starts a cluster of `memberCount` members on a reliable network. */
export function startCluster(memberCount: number, options: ScenarioOptions = {}): Cluster {
  const cluster = new Cluster({
    seed: 1,
    faults: RELIABLE_NETWORK,
    readyDeferRate: 0.2,
    tickSkewUnitsMax: 1,
    ...options,
    memberCount,
    core: { ...CORE_SETTINGS_DEFAULT, ...options.core },
  });
  cluster.start();
  return cluster;
}

/**
 * Runs a scenario body. When it throws, the error gets the cluster's newest
 * trace lines, so a failing scenario shows the events that led to it.
 */
export function withTrace(cluster: Cluster, body: () => void): void {
  try {
    body();
  } catch (error) {
    const tail = cluster.trace.tail().lines.slice(-TRACE_LINES_SHOWN).join('\n  ');
    const message = error instanceof Error ? error.message : String(error);
    const wrapped = new Error(`${message}\nseed ${cluster.options.seed}, last trace lines:\n  ${tail}`);
    if (error instanceof Error) wrapped.stack = `${wrapped.message}\n${error.stack ?? ''}`;
    throw wrapped;
  }
}

/**
 * Returns the leader of the highest term when it reaches a majority of up
 * members and every up member it reaches follows it; otherwise undefined.
 */
export function agreedLeader(cluster: Cluster): Member | undefined {
  const leader = cluster.leader();
  const status = leader?.core?.status();
  if (leader === undefined || status === undefined) return undefined;
  const reachable = cluster.upMembers().filter((member) => member === leader || cluster.network.canDeliver(leader.id, member.id));
  if (reachable.length < cluster.checker.majority()) return undefined;
  const agreed = reachable.every((member) => {
    const other = member.core?.status();
    return other?.term === status.term && other.leaderId === leader.id;
  });
  return agreed ? leader : undefined;
}

/** Waits for a leader that a majority follows (see agreedLeader); throws after `ticksMax`. */
export function waitForLeader(cluster: Cluster, ticksMax: number = ELECTION_TICKS_MAX): Member {
  let leader: Member | undefined;
  const found = cluster.runUntil(() => (leader = agreedLeader(cluster)) !== undefined, ticksMax);
  if (!found || leader === undefined) throw new Error(`no leader within ${ticksMax} ticks`);
  return leader;
}

export function termOf(member: Member): number {
  const status = member.core?.status();
  if (status === undefined) throw new Error(`${member.id} is down`);
  return status.term;
}

/** Returns the values a member applied, in index order. */
export function appliedValues(member: Member): string[] {
  return member.applied
    .filter((entry) => entry.data.length > 0)
    .map((entry) => Buffer.from(entry.data).toString('utf8'));
}

export function hasApplied(member: Member, value: string): boolean {
  return member.applied.some((entry) => entry.data.length > 0 && Buffer.from(entry.data).toString('utf8') === value);
}

/** Returns true when every member in `members` applied every value. */
export function allApplied(members: readonly Member[], values: readonly string[]): boolean {
  return members.every((member) => values.every((value) => hasApplied(member, value)));
}

/**
 * Proposes values at the leader and waits until every member in `members`
 * (default: those up) applied them. When a new leader appears first, it
 * proposes them there too, so a value may commit twice. Throws after
 * `ticksMax`.
 */
export function commitValues(cluster: Cluster, values: readonly string[], members?: readonly Member[], ticksMax = COMMIT_TICKS_MAX): void {
  const targets = members ?? cluster.upMembers();
  let proposedTerm = -1;
  const done = (): boolean => {
    if (allApplied(targets, values)) return true;
    const leader = cluster.leader();
    if (leader === undefined || termOf(leader) === proposedTerm) return false;
    const result = cluster.propose(leader.id, values);
    if (result?.ok === true) proposedTerm = result.term;
    return false;
  };
  if (!cluster.runUntil(done, ticksMax)) {
    throw new Error(`values ${values.join(',')} not applied on ${targets.map((member) => member.id).join(',')} within ${ticksMax} ticks`);
  }
}

/** Returns n fresh values from the cluster's ledger. */
export function freshValues(cluster: Cluster, count: number): string[] {
  return Array.from({ length: count }, () => cluster.ledger.nextValue());
}

/** Waits until every member in `members` applied every value; throws after `ticksMax`. */
export function waitApplied(cluster: Cluster, values: readonly string[], members: readonly Member[], ticksMax = COMMIT_TICKS_MAX): void {
  if (!cluster.runUntil(() => allApplied(members, values), ticksMax)) {
    throw new Error(`values ${values.join(',')} not applied on ${members.map((member) => member.id).join(',')} within ${ticksMax} ticks`);
  }
}

/**
 * Waits until every up member follows one leader and has committed and applied
 * its whole log, then throws unless all applied the same entries.
 */
export function assertSameStateMachines(cluster: Cluster, ticksMax = COMMIT_TICKS_MAX): void {
  if (!cluster.runUntil(() => isConverged(cluster), ticksMax)) throw new Error(`up members did not converge within ${ticksMax} ticks`);
  const [first, ...rest] = cluster.upMembers();
  if (first === undefined) return;
  const expected = appliedValues(first).join(',');
  for (const member of rest) {
    if (member.applied.length !== first.applied.length) {
      throw new Error(`${member.id} applied ${member.applied.length} entries, ${first.id} applied ${first.applied.length}`);
    }
    if (appliedValues(member).join(',') !== expected) throw new Error(`${member.id} and ${first.id} applied different values`);
  }
}
