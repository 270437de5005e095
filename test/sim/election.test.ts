// Leader election scenarios on the simulated cluster: first election,
// re-election after the leader is lost, elections under random disconnects,
// and the message rate of an idle cluster.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../src/sim/rng';
import { agreedLeader, commitValues, freshValues, startCluster, termOf, waitForLeader, withTrace } from './helpers';

test('initial election elects one leader', () => {
  const cluster = startCluster(3);
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const term = termOf(leader);
    assert.ok(term >= 1, 'the first leader has a term of at least 1');

    // A healthy cluster keeps its leader and term.
    cluster.runTicks(100);
    assert.is(agreedLeader(cluster)?.id, leader.id);
    assert.is(termOf(leader), term);
  });
});

test('re-election after leader loss', () => {
  const cluster = startCluster(3);
  withTrace(cluster, () => {
    const first = waitForLeader(cluster);
    const firstTerm = termOf(first);
    cluster.network.isolate(first.id);
    const second = waitForLeader(cluster);
    assert.is.not(second.id, first.id);
    assert.ok(termOf(second) > firstTerm, 'the new leader has a higher term');

    // The old leader rejoins as a follower of the new one.
    cluster.network.heal();
    const afterHeal = waitForLeader(cluster);
    assert.is(first.core?.status().leaderId, afterHeal.id);

    // Without a majority no leader is elected.
    const [a, b] = cluster.members.filter((member) => member.id !== afterHeal.id);
    if (a === undefined || b === undefined) throw new Error('expected three members');
    cluster.network.partition([[afterHeal.id], [a.id], [b.id]]);
    cluster.runTicks(60);
    const leaders = cluster.members.filter((member) => member.core?.status().role === 'leader');
    assert.ok(leaders.every((member) => member.id === afterHeal.id), 'only the old leader can still think it leads');

    // A majority is back: a leader again.
    cluster.network.partition([[afterHeal.id, a.id], [b.id]]);
    const final = waitForLeader(cluster);
    assert.ok([afterHeal.id, a.id].includes(final.id));
  });
});

test('many elections with random disconnects', () => {
  const cluster = startCluster(7, { seed: 7 });
  const rng = new Rng(77);
  withTrace(cluster, () => {
    waitForLeader(cluster);
    for (let round = 0; round < 10; round += 1) {
      // Cut three random members off; the other four are a majority.
      const ids = rng.shuffle(cluster.members.map((member) => member.id));
      cluster.network.partition([ids.slice(0, 4), [ids[4] ?? ''], [ids[5] ?? ''], [ids[6] ?? '']]);
      cluster.runTicks(40);
      const majority = ids.slice(0, 4).map((id) => cluster.member(id));
      const leader = cluster.leader();
      if (leader === undefined) throw new Error(`round ${round}: no leader`);
      assert.ok(majority.includes(leader), `round ${round}: the majority side has the leader`);
      cluster.network.heal();
      waitForLeader(cluster);
    }
  });
});

test('stale candidates do not starve an up-to-date member', () => {
  // Without pre-vote, a member with a stale log and a fast clock campaigns
  // again and again and loses. Its vote requests must not reset the election
  // timer of the member that can win, or that member never campaigns.
  const cluster = startCluster(3, { tickSkewUnitsMax: 0, core: { preVote: false, checkQuorum: false } });
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const [stale, upToDate] = cluster.members.filter((member) => member !== leader);
    if (stale === undefined || upToDate === undefined) throw new Error('expected two followers');
    cluster.network.isolate(stale.id);
    commitValues(cluster, freshValues(cluster, 3), [leader, upToDate]);

    cluster.crash(leader.id);
    stale.tickPeriodUnits = 7;
    upToDate.tickPeriodUnits = 13;
    cluster.network.heal();
    const next = waitForLeader(cluster);
    assert.is(next, upToDate, 'the member with the complete log wins');
  });
});

test('idle leader sends a bounded number of messages per tick', () => {
  for (const memberCount of [3, 5]) {
    const heartbeatIntervalTicks = 2;
    const cluster = startCluster(memberCount, { tickSkewUnitsMax: 0, core: { heartbeatIntervalTicks } });
    withTrace(cluster, () => {
      waitForLeader(cluster);
      cluster.runTicks(20);
      const before = cluster.messagesSent;
      const idleTicks = 200;
      cluster.runTicks(idleTicks);
      const perTick = (cluster.messagesSent - before) / idleTicks;
      // One heartbeat to each follower and one response per heartbeat interval,
      // with 10% slack for tick jitter.
      const boundPerTick = ((2 * (memberCount - 1)) / heartbeatIntervalTicks) * 1.1;
      assert.ok(perTick <= boundPerTick, `${memberCount} members: ${perTick.toFixed(2)} messages per tick, bound ${boundPerTick.toFixed(2)}`);
      assert.ok(perTick > 0, 'the leader sends heartbeats while idle');
    });
  }
});

test.run();
