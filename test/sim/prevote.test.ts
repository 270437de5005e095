// Pre-vote and check-quorum. A member that rejoins after a partition does not
// depose a healthy leader. A leader that loses its majority steps down. A
// member left behind at a low term does not stop the others from electing a
// leader once the leader dies.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Member } from '../../src/sim/member';
import {
  assertSameStateMachines,
  commitValues,
  ELECTION_TICKS_MAX,
  freshValues,
  startCluster,
  termOf,
  waitForLeader,
  withTrace,
} from './helpers';

const PARTITION_TICKS = 100;

function followerOf(members: readonly Member[], leader: Member): Member {
  const follower = members.find((member) => member !== leader);
  if (follower === undefined) throw new Error('no follower');
  return follower;
}

test('rejoining member does not disrupt a healthy leader', () => {
  const cluster = startCluster(3, { core: { preVote: true, checkQuorum: true } });
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const term = termOf(leader);
    const follower = followerOf(cluster.members, leader);

    cluster.network.isolate(follower.id);
    cluster.runTicks(PARTITION_TICKS);
    assert.is(termOf(follower), term, 'pre-votes that fail leave the term alone');

    cluster.network.heal();
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assert.is(cluster.leader(), leader, 'the leader keeps its office');
    assert.is(termOf(leader), term, 'the term did not change');
  });
});

test('without pre-vote a rejoining member raises the term', () => {
  // The contrast to the test above: it shows the disruption pre-vote prevents.
  const cluster = startCluster(3, { core: { preVote: false, checkQuorum: false } });
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const term = termOf(leader);
    const follower = followerOf(cluster.members, leader);
    cluster.network.isolate(follower.id);
    cluster.runTicks(PARTITION_TICKS);
    assert.ok(termOf(follower) > term, 'the isolated member campaigned');
    cluster.network.heal();
    const next = waitForLeader(cluster);
    assert.ok(termOf(next) > term, 'the cluster moved to a higher term');
  });
});

test('leader without a quorum steps down', () => {
  const cluster = startCluster(5, { core: { checkQuorum: true } });
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const partner = followerOf(cluster.members, leader);
    const others = cluster.members.filter((member) => member !== leader && member !== partner).map((member) => member.id);
    cluster.network.partition([[leader.id, partner.id], others]);

    // The leader hears from one follower of four: it steps down within two
    // election timeouts (the bound allows one more for tick skew).
    const electionTimeoutTicks = cluster.options.core.electionTimeoutTicks;
    const steppedDown = cluster.runUntil(() => leader.core?.status().role !== 'leader', 3 * electionTimeoutTicks);
    assert.ok(steppedDown, 'the minority leader stepped down');
    const next = waitForLeader(cluster);
    assert.ok(others.includes(next.id), 'the majority side elects the leader');

    cluster.network.heal();
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
  });
});

test('low-term member does not block elections after leader dies', () => {
  for (const seed of [41, 42, 43, 44, 45]) {
    const cluster = startCluster(3, { seed, core: { preVote: true, checkQuorum: true } });
    withTrace(cluster, () => {
      const first = waitForLeader(cluster);
      const behind = followerOf(cluster.members, first);
      cluster.network.isolate(behind.id);

      // Raise the others' term with a leader change while `behind` is away.
      cluster.crash(first.id);
      cluster.restart(first.id);
      const second = waitForLeader(cluster);
      commitValues(cluster, freshValues(cluster, 3), cluster.members.filter((member) => member !== behind));
      assert.ok(termOf(behind) < termOf(second), `seed ${seed}: the isolated member has the lower term`);

      // The leader dies as the low-term member returns.
      cluster.crash(second.id);
      cluster.network.heal();
      const third = waitForLeader(cluster, ELECTION_TICKS_MAX);
      assert.is.not(third, behind, `seed ${seed}: the member with the stale log cannot win`);
      commitValues(cluster, freshValues(cluster, 1), cluster.upMembers());
    });
  }
});

test.run();
