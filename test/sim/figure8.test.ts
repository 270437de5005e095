// The Figure 8 schedules of the Raft paper (Ongaro and Ousterhout, 2014):
// leaders crash or are cut off right after they append, so entries of older
// terms sit on a majority without being committed. A leader that counted
// replicas for them would commit entries a later leader overwrites, which
// the invariant checker reports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Cluster } from '../../src/sim/cluster';
import type { Member } from '../../src/sim/member';
import { CRASH_POINTS } from '../../src/sim/driver';
import { UNRELIABLE_NETWORK, type NetworkFaults } from '../../src/sim/network';
import { Rng } from '../../src/sim/rng';
import { assertSameStateMachines, commitValues, freshValues, startCluster, termOf, waitForLeader, withTrace } from './helpers';

const ITERATIONS = 1000;
/** Probability of a long pause in an iteration, as in the original test (100 in 1,000). */
const LONG_PAUSE_RATE = 0.1;
/** A long pause lasts up to half an election timeout. */
const LONG_PAUSE_TICKS_MAX = 5;

/** Unreliable network of the second variant: loss, duplicates and long reordering. */
const FIGURE8_UNRELIABLE: NetworkFaults = { ...UNRELIABLE_NETWORK, lateRate: 0.3, lateUnitsMax: 20 * 10 };

/**
 * One entry per append and one append in flight: a new leader then sends the
 * old-term entries before its own no-op, so a majority can hold an old-term
 * entry alone, which is the state Figure 8 is about.
 */
const FIGURE8_CORE = { appendEntriesMax: 1, inflightAppendsMax: 1 };

/** Proposes one value at every up member; returns the one that accepted it as leader. */
function proposeEverywhere(cluster: Cluster, reachable: (id: string) => boolean): string | undefined {
  let leaderId: string | undefined;
  for (const member of cluster.upMembers()) {
    if (!reachable(member.id)) continue;
    const result = cluster.propose(member.id, freshValues(cluster, 1));
    if (result?.ok === true) leaderId = member.id;
  }
  return leaderId;
}

function pause(cluster: Cluster, rng: Rng): void {
  if (rng.chance(LONG_PAUSE_RATE)) cluster.runTicks(rng.int(1, LONG_PAUSE_TICKS_MAX));
  else cluster.runTicks(rng.int(0, 13) / 10);
}

test('figure 8 with crashes on a reliable network', () => {
  // Leaders also crash right after storing a higher commit index, in 30% of
  // those Readies: the moment at which an entry committed too early is lost.
  const cluster = startCluster(5, { seed: 8, readyDeferRate: 0.3, leaderCommitCrashRate: 0.3, core: FIGURE8_CORE });
  const rng = new Rng(8);
  withTrace(cluster, () => {
    waitForLeader(cluster);
    for (let iteration = 0; iteration < ITERATIONS; iteration += 1) {
      const leaderId = proposeEverywhere(cluster, () => true);
      pause(cluster, rng);
      if (leaderId !== undefined) cluster.crash(leaderId, rng.pick(CRASH_POINTS));
      if (cluster.upMembers().length < 3) cluster.restart(rng.pick(cluster.members).id);
    }
    cluster.leaderCommitCrashRate = 0;
    for (const member of cluster.members) cluster.restart(member.id);
    commitValues(cluster, freshValues(cluster, 1), cluster.members, 200);
    assertSameStateMachines(cluster);
    assert.ok(cluster.checker.committedCount() > 10, 'entries committed along the way');
  });
});

test('figure 8 with cut-off leaders on an unreliable network', () => {
  const cluster = startCluster(5, { seed: 9, faults: FIGURE8_UNRELIABLE, readyDeferRate: 0.3, core: FIGURE8_CORE });
  const rng = new Rng(9);
  const connected = new Set(cluster.members.map((member) => member.id));
  const applyPartition = (): void => {
    const cut = cluster.members.map((member) => member.id).filter((id) => !connected.has(id));
    cluster.network.partition([[...connected], ...cut.map((id) => [id])]);
  };
  withTrace(cluster, () => {
    for (let iteration = 0; iteration < ITERATIONS; iteration += 1) {
      const leaderId = proposeEverywhere(cluster, (id) => connected.has(id));
      pause(cluster, rng);
      if (leaderId !== undefined && rng.chance(0.5)) connected.delete(leaderId);
      if (connected.size < 3) connected.add(rng.pick(cluster.members).id);
      applyPartition();
    }
    cluster.network.heal();
    cluster.network.faults = { ...UNRELIABLE_NETWORK, lossRate: 0, duplicateRate: 0, lateRate: 0 };
    commitValues(cluster, freshValues(cluster, 1), cluster.members, 200);
    assertSameStateMachines(cluster);
    assert.ok(cluster.checker.committedCount() > 10, 'entries committed along the way');
  });
});

/** Returns the first member of `candidates` that leads, or undefined. */
function leaderAmong(candidates: readonly Member[]): Member | undefined {
  return candidates.find((member) => member.core?.status().role === 'leader');
}

test('figure 8 exact schedule', () => {
  // The five steps of Figure 8, forced with partitions. S1 and S2 store an
  // entry of term t at index i. X, elected by the others, stores its no-op
  // of a later term at i and is cut off. S1 or S2 (call it L) is elected
  // again and copies the term-t entry to S3, which puts it on a majority.
  // L is cut off before its own no-op is on a majority. X is elected with
  // S3 and S4 and overwrites index i. Counting replicas for the term-t entry
  // would have committed it, and the checker would report it lost.
  const cluster = startCluster(5, { core: { ...FIGURE8_CORE, preVote: false, checkQuorum: false } });
  const [s1, s2, s3, s4, s5] = cluster.members as [Member, Member, Member, Member, Member];
  const ids = (members: readonly Member[]): string[] => members.map((member) => member.id);
  withTrace(cluster, () => {
    cluster.network.partition([ids([s1, s2, s3, s4]), ids([s5])]);
    s5.tickPeriodUnits = 30;
    const first = waitForLeader(cluster);
    commitValues(cluster, freshValues(cluster, 1), [s1, s2, s3, s4]);
    // Name the first leader S1 and one of its followers S2.
    const [leaderS1, followerS2, ...rest] = [first, ...[s1, s2, s3, s4].filter((member) => member !== first)] as Member[];
    if (leaderS1 === undefined || followerS2 === undefined) throw new Error('expected a leader and a follower');
    const others = [...rest, s5];

    // Step a: S1 stores the entry at i with S2 only.
    cluster.network.partition([ids([leaderS1, followerS2]), ...others.map((member) => [member.id])]);
    const result = cluster.propose(leaderS1.id, freshValues(cluster, 1));
    if (result?.ok !== true) throw new Error('the first leader did not accept the entry');
    const index = result.firstIndex;
    const term = result.term;
    assert.ok(cluster.runUntil(() => followerS2.store.termAt(index) === term, 20), 'S2 stored the entry');

    // Step b: the other three elect X, whose no-op lands at i on X alone.
    cluster.network.partition([[leaderS1.id], [followerS2.id], ids(others)]);
    let x: Member | undefined;
    assert.ok(cluster.runEventsUntil(() => (x = leaderAmong(others)) !== undefined, 100), 'the other three elect X');
    if (x === undefined) throw new Error('no X');
    const elected = x;
    const [s3Role, s4Role] = others.filter((member) => member !== elected) as [Member, Member];
    cluster.network.partition([[leaderS1.id], [followerS2.id], [elected.id], [s3Role.id], [s4Role.id]]);
    cluster.runTicks(2);
    const xTerm = elected.store.termAt(index);
    if (xTerm === undefined) throw new Error('X has no entry at i');
    assert.ok(xTerm > term, 'X stored its no-op at i');

    // Step c: S1 or S2 is elected by S1, S2 and S3, and copies the term-t entry to S3.
    cluster.network.partition([ids([leaderS1, followerS2, s3Role]), [elected.id], [s4Role.id]]);
    let leaderL: Member | undefined;
    const copied = cluster.runEventsUntil(() => {
      leaderL = leaderAmong([leaderS1, followerS2]);
      const peer = leaderL?.core?.status().peers.find((progress) => progress.id === s3Role.id);
      return peer !== undefined && peer.matchIndex >= index;
    }, 200);
    assert.ok(copied, 'L copied the term-t entry to S3');

    // Step d: L is cut off before its no-op is on a majority, and X, whose
    // last term is the highest on its side, is elected in a term above L's.
    if (leaderL === undefined) throw new Error('no L');
    const termL = termOf(leaderL);
    cluster.network.partition([[leaderS1.id], [followerS2.id], ids([elected, s3Role, s4Role])]);
    const reelected = cluster.runEventsUntil(() => {
      const status = elected.core?.status();
      return status?.role === 'leader' && status.term > termL;
    }, 200);
    assert.ok(reelected, 'X is elected again above the term of L');
    assert.ok(cluster.runUntil(() => s3Role.store.termAt(index) === xTerm, 20), 'X overwrote index i on S3');

    // Step e: everyone back; the cluster agrees.
    cluster.network.heal();
    commitValues(cluster, freshValues(cluster, 1), cluster.members, 200);
    assertSameStateMachines(cluster);
  });
});

test.run();
