// Snapshots. A follower whose missing entries the leader compacted catches up
// from a snapshot message, and the simulator carries the state machine data
// beside that message. Compaction may keep a window of entries. Random seeds
// compact often under loss, crashes and partitions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChaosSchedule } from '../../src/sim/chaos';
import { checkLiveness } from '../../src/sim/liveness';
import { UNRELIABLE_NETWORK } from '../../src/sim/network';
import { Rng } from '../../src/sim/rng';
import { assertSameStateMachines, commitValues, freshValues, startCluster, waitForLeader, withTrace } from './helpers';

test('lagging follower installs a snapshot', () => {
  const cluster = startCluster(3);
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const lagging = cluster.members.find((member) => member !== leader);
    if (lagging === undefined) throw new Error('no follower');
    cluster.crash(lagging.id);
    commitValues(cluster, freshValues(cluster, 40));

    // Every member that is up compacts everything it applied.
    for (const member of cluster.upMembers()) {
      const applied = member.core?.status().appliedIndex ?? 0;
      cluster.compact(member.id, applied, 0);
    }
    cluster.restart(lagging.id);
    commitValues(cluster, freshValues(cluster, 2), cluster.members);
    assertSameStateMachines(cluster);
    assert.ok((cluster.deliveredCounts.get('snapshot') ?? 0) > 0, 'a snapshot message was delivered');
    assert.ok(lagging.store.currentSnapshot().index >= 40, 'the follower installed the snapshot');
  });
});

test('compaction keeps a window for a slightly lagging follower', () => {
  const cluster = startCluster(3);
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    commitValues(cluster, freshValues(cluster, 10), cluster.members);
    const lagging = cluster.members.find((member) => member !== leader);
    if (lagging === undefined) throw new Error('no follower');
    cluster.network.isolate(lagging.id);
    commitValues(cluster, freshValues(cluster, 5), cluster.members.filter((member) => member !== lagging));

    // The leader snapshots everything but keeps the last 30 entries, which
    // cover what the follower misses: it catches up from the log.
    const applied = leader.core?.status().appliedIndex ?? 0;
    cluster.compact(leader.id, applied, 30);
    cluster.network.heal();
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
    assert.is(cluster.deliveredCounts.get('snapshot') ?? 0, 0, 'no snapshot was needed');
  });
});

test('snapshots under loss, crashes and partitions', () => {
  let snapshotsDelivered = 0;
  for (let seed = 100; seed < 130; seed += 1) {
    const cluster = startCluster(3 + (seed % 3), { seed, faults: UNRELIABLE_NETWORK, readyDeferRate: 0.3 });
    const chaos = new ChaosSchedule(cluster, {
      proposalRate: 0.8,
      partitionRate: 0.03,
      healRate: 0.1,
      crashRate: 0.04,
      compactRate: 0.5,
      downTicksMax: 40,
      shortLeaderRate: 0.2,
    });
    withTrace(cluster, () => {
      for (let tick = 0; tick < 300; tick += 1) {
        chaos.step();
        cluster.runTicks(1);
      }
      checkLiveness(cluster, new Rng(seed), 200);
      cluster.ledger.checkFinalLog((index) => cluster.checker.committedKeyAt(index));
    });
    snapshotsDelivered += cluster.deliveredCounts.get('snapshot') ?? 0;
  }
  assert.ok(snapshotsDelivered >= 10, `${snapshotsDelivered} snapshot messages delivered over 30 seeds`);
});

test.run();
