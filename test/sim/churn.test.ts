// Churn: members crash, restart, disconnect and reconnect while clients keep
// proposing. At the end every value a client got an acknowledgement for
// (committed and applied on the member that accepted it) is in the final log.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Cluster } from '../../src/sim/cluster';
import { CRASH_POINTS } from '../../src/sim/driver';
import { checkLiveness } from '../../src/sim/liveness';
import { RELIABLE_NETWORK, UNRELIABLE_NETWORK, type NetworkFaults } from '../../src/sim/network';
import { Rng } from '../../src/sim/rng';
import { freshValues, startCluster, withTrace } from './helpers';

const ROUNDS = 60;
const TICKS_PER_ROUND = 7;
const CLIENT_COUNT = 3;
const LIVENESS_TICKS_MAX = 200;

/** Proposes one value per client, at the leader when there is one. */
function runClients(cluster: Cluster, rng: Rng): void {
  for (let client = 0; client < CLIENT_COUNT; client += 1) {
    const up = cluster.upMembers();
    if (up.length === 0) return;
    const leader = cluster.leader();
    const target = leader !== undefined && rng.chance(0.8) ? leader : rng.pick(up);
    cluster.propose(target.id, freshValues(cluster, 1));
  }
}

/** Disconnects, connects, crashes and restarts members at random, for one round. */
function churn(cluster: Cluster, rng: Rng, connected: Set<string>): void {
  const ids = cluster.members.map((member) => member.id);
  if (rng.chance(0.2)) connected.delete(rng.pick(ids));
  if (rng.chance(0.5)) connected.add(rng.pick(ids));
  if (rng.chance(0.2)) cluster.crash(rng.pick(ids), rng.pick(CRASH_POINTS));
  if (rng.chance(0.5)) cluster.restart(rng.pick(ids));
  const cut = ids.filter((id) => !connected.has(id));
  cluster.network.partition([[...connected], ...cut.map((id) => [id])]);
}

function runChurn(seed: number, faults: NetworkFaults): Cluster {
  const cluster = startCluster(5, { seed, faults, readyDeferRate: 0.3 });
  const rng = new Rng(seed);
  const connected = new Set(cluster.members.map((member) => member.id));
  withTrace(cluster, () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      churn(cluster, rng, connected);
      for (let tick = 0; tick < TICKS_PER_ROUND; tick += 1) {
        runClients(cluster, rng);
        cluster.runTicks(1);
      }
    }
    checkLiveness(cluster, rng, LIVENESS_TICKS_MAX);
    cluster.ledger.checkFinalLog((index) => cluster.checker.committedKeyAt(index));
  });
  return cluster;
}

test('churn on a reliable network keeps acknowledged values', () => {
  for (const seed of [21, 22, 23]) {
    const cluster = runChurn(seed, RELIABLE_NETWORK);
    assert.ok(cluster.ledger.acknowledgedCount() > 50, `seed ${seed}: ${cluster.ledger.acknowledgedCount()} values acknowledged`);
  }
});

test('churn on an unreliable network keeps acknowledged values', () => {
  for (const seed of [31, 32, 33]) {
    const cluster = runChurn(seed, UNRELIABLE_NETWORK);
    assert.ok(cluster.ledger.acknowledgedCount() > 20, `seed ${seed}: ${cluster.ledger.acknowledgedCount()} values acknowledged`);
  }
});

test.run();
