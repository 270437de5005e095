// Persistence scenarios: what a member stored survives its crash, whether all
// members crash, or the leader and a minority.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CRASH_POINTS } from '../../src/sim/driver';
import { TIME_UNITS_PER_TICK } from '../../src/sim/network';
import { Rng } from '../../src/sim/rng';
import { appliedValues, assertSameStateMachines, commitValues, freshValues, startCluster, termOf, waitForLeader, withTrace } from './helpers';

test('persistence across crashes of all members', () => {
  const cluster = startCluster(3, { seed: 11 });
  const rng = new Rng(11);
  withTrace(cluster, () => {
    waitForLeader(cluster);
    const before = freshValues(cluster, 5);
    commitValues(cluster, before, cluster.members);

    for (let round = 0; round < 5; round += 1) {
      for (const member of cluster.members) cluster.crash(member.id, rng.pick(CRASH_POINTS));
      assert.is(cluster.upMembers().length, 0);
      for (const member of cluster.members) cluster.restart(member.id);
      waitForLeader(cluster);
      commitValues(cluster, freshValues(cluster, 2), cluster.members);
    }
    assertSameStateMachines(cluster);
    const applied = appliedValues(cluster.members[0] ?? cluster.member('n1'));
    for (const value of before) assert.ok(applied.includes(value), `${value} survived every crash`);
  });
});

test('persistence across crash of leader and a minority', () => {
  const cluster = startCluster(5, { seed: 12 });
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const before = freshValues(cluster, 3);
    commitValues(cluster, before, cluster.members);

    const follower = cluster.members.find((member) => member !== leader);
    if (follower === undefined) throw new Error('no follower');
    cluster.crash(leader.id, 'afterSend');
    cluster.crash(follower.id, 'afterPersist');
    const survivors = cluster.upMembers();
    assert.is(survivors.length, 3);

    // The other three elect a leader and keep committing.
    const next = waitForLeader(cluster);
    assert.ok(survivors.includes(next), 'a survivor leads');
    const during = freshValues(cluster, 3);
    commitValues(cluster, during, survivors);

    cluster.restart(leader.id);
    cluster.restart(follower.id);
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
    for (const value of [...before, ...during]) assert.ok(appliedValues(leader).includes(value), `${value} reached the old leader`);
  });
});

test('crashes between persist and send keep votes', () => {
  // Members crash at every point of their Ready in turn while elections run;
  // the checker rejects two leaders in a term and a changed vote.
  const cluster = startCluster(3, { seed: 13, readyDeferRate: 0.5 });
  const rng = new Rng(13);
  withTrace(cluster, () => {
    for (let round = 0; round < 40; round += 1) {
      const victim = rng.pick(cluster.members);
      cluster.crash(victim.id, rng.pick(CRASH_POINTS));
      cluster.runTicks(rng.int(1, 15));
      cluster.restart(victim.id);
      if (rng.chance(0.5)) cluster.propose(cluster.leader()?.id ?? 'n1', freshValues(cluster, 1));
      cluster.runTicks(rng.int(1, 15));
    }
    waitForLeader(cluster);
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
  });
});

test('vote survives a crash right after it is sent', () => {
  // V grants its vote to C1 and crashes right after sending it. When C2
  // requests V's vote in the same term, V must still have its vote for C1,
  // or C1 and C2 both lead that term.
  const cluster = startCluster(3, { tickSkewUnitsMax: 0, core: { preVote: false, checkQuorum: false } });
  withTrace(cluster, () => {
    const voter = waitForLeader(cluster);
    const [first, second] = cluster.members.filter((member) => member !== voter);
    if (first === undefined || second === undefined) throw new Error('expected two followers');
    first.tickPeriodUnits = 7;
    second.tickPeriodUnits = 30;
    cluster.network.partition([[voter.id], [first.id], [second.id]]);

    // C1 times out first; V hears its request and grants the vote.
    assert.ok(cluster.runEventsUntil(() => first.core?.status().role === 'candidate', 100), 'C1 campaigns');
    const term = termOf(first);
    cluster.network.partition([[voter.id, first.id], [second.id]]);
    let granted = false;
    cluster.sendObserver = (message) => {
      if (message.type === 'voteResponse' && message.from === voter.id && message.granted) granted = true;
    };
    assert.ok(cluster.runEventsUntil(() => granted, 20), 'V grants its vote to C1');
    cluster.sendObserver = null;
    cluster.crash(voter.id);
    cluster.restart(voter.id);
    voter.tickPeriodUnits = 60;
    assert.is(voter.store.currentHardState().vote, first.id, 'the vote is on disk');

    // C2 requests V's vote in the same term. V rejects it, so C2 needs a later term.
    cluster.network.partition([[first.id], [voter.id, second.id]]);
    assert.ok(cluster.runUntil(() => second.core?.status().role === 'leader', 200), 'C2 is elected');
    assert.ok(termOf(second) > term, 'C2 leads a later term than C1');
    for (const member of cluster.members) member.tickPeriodUnits = TIME_UNITS_PER_TICK;
    cluster.network.heal();
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
  });
});

test.run();
