// The Figure 8 schedules of the Raft paper (Ongaro and Ousterhout, 2014):
// leaders crash or are cut off right after they append, so entries of older
// terms sit on a majority without being committed. A leader that counted
// replicas for them would commit entries a later leader overwrites, which
// the invariant checker reports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Cluster } from '../../src/sim/cluster';
import { CRASH_POINTS } from '../../src/sim/driver';
import { UNRELIABLE_NETWORK, type NetworkFaults } from '../../src/sim/network';
import { Rng } from '../../src/sim/rng';
import { assertSameStateMachines, commitValues, freshValues, startCluster, waitForLeader, withTrace } from './helpers';

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
  const cluster = startCluster(5, { seed: 8, readyDeferRate: 0.3, core: FIGURE8_CORE });
  const rng = new Rng(8);
  withTrace(cluster, () => {
    waitForLeader(cluster);
    for (let iteration = 0; iteration < ITERATIONS; iteration += 1) {
      const leaderId = proposeEverywhere(cluster, () => true);
      pause(cluster, rng);
      if (leaderId !== undefined) cluster.crash(leaderId, rng.pick(CRASH_POINTS));
      if (cluster.upMembers().length < 3) cluster.restart(rng.pick(cluster.members).id);
    }
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

test.run();
