// Log agreement scenarios: basic agreement, a failed follower, no majority,
// concurrent proposals, a partitioned leader rejoining, and fast back-up of a
// follower over about 50 divergent entries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  appliedValues,
  assertSameStateMachines,
  commitValues,
  freshValues,
  startCluster,
  termOf,
  waitApplied,
  waitForLeader,
  withTrace,
} from './helpers';

/** Rejected appends two followers may need to skip back over 50 divergent entries. */
const FAST_BACKUP_REJECTS_MAX = 12;

test('basic agreement', () => {
  const cluster = startCluster(3);
  withTrace(cluster, () => {
    waitForLeader(cluster);
    for (let round = 0; round < 5; round += 1) {
      const [value] = freshValues(cluster, 1);
      if (value === undefined) throw new Error('no value');
      const leader = waitForLeader(cluster);
      const result = cluster.propose(leader.id, [value]);
      assert.ok(result?.ok, `round ${round}: the leader accepts the proposal`);
      waitApplied(cluster, [value], cluster.members);
      for (const member of cluster.members) {
        const entry = member.applied[member.applied.length - 1];
        assert.is(Buffer.from(entry?.data ?? new Uint8Array()).toString('utf8'), value, `${member.id} applied ${value} last`);
      }
    }
    assertSameStateMachines(cluster);
  });
});

test('agreement despite a failed follower', () => {
  const cluster = startCluster(3);
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const follower = cluster.members.find((member) => member.id !== leader.id);
    if (follower === undefined) throw new Error('no follower');
    cluster.crash(follower.id);
    commitValues(cluster, freshValues(cluster, 5));
    assert.is(follower.isUp, false);

    // The follower returns and catches up.
    cluster.restart(follower.id);
    const later = freshValues(cluster, 2);
    commitValues(cluster, later, cluster.members);
    assertSameStateMachines(cluster);
  });
});

test('no agreement without a majority', () => {
  const cluster = startCluster(5);
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const [partner, ...cut] = cluster.members.filter((member) => member.id !== leader.id).map((member) => member.id);
    if (partner === undefined) throw new Error('no follower');
    cluster.network.partition([[leader.id, partner], ...cut.map((id) => [id])]);
    const commitBefore = leader.core?.status().commitIndex ?? -1;
    const [value] = freshValues(cluster, 1);
    const result = cluster.propose(leader.id, [value ?? '']);
    assert.ok(result?.ok, 'the leader accepts the proposal');
    cluster.runTicks(50);
    for (const member of cluster.members) {
      assert.ok((member.core?.status().commitIndex ?? 0) <= commitBefore, `${member.id} commits nothing without a majority`);
    }

    // With the majority back, new values commit everywhere.
    cluster.network.heal();
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
  });
});

test('concurrent proposals commit once each in order', () => {
  const cluster = startCluster(3);
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    const values = freshValues(cluster, 30);
    const indexes: number[] = [];
    // Thirty clients propose in the same instant.
    for (const value of values) {
      const result = cluster.propose(leader.id, [value]);
      assert.ok(result?.ok, `${value} accepted`);
      if (result?.ok === true) indexes.push(result.firstIndex);
    }
    indexes.forEach((index, position) => assert.is(index, (indexes[0] ?? 0) + position, 'indexes are consecutive'));
    waitApplied(cluster, values, cluster.members);
    for (const member of cluster.members) {
      const applied = appliedValues(member);
      assert.equal(applied.slice(-values.length), values, `${member.id} applied all values once, in order`);
    }
  });
});

test('partitioned leader rejoins and loses uncommitted entries', () => {
  const cluster = startCluster(3);
  withTrace(cluster, () => {
    const oldLeader = waitForLeader(cluster);
    commitValues(cluster, freshValues(cluster, 1));

    // The isolated leader accepts values it can never commit.
    cluster.network.isolate(oldLeader.id);
    const lost = freshValues(cluster, 3);
    for (const value of lost) assert.ok(cluster.propose(oldLeader.id, [value])?.ok, `${value} accepted by the old leader`);

    // The other two elect a leader and commit other values at those indexes.
    cluster.runUntil(() => cluster.leader() !== undefined && cluster.leader() !== oldLeader, 100);
    const committed = freshValues(cluster, 3);
    commitValues(cluster, committed, cluster.members.filter((member) => member !== oldLeader));

    cluster.network.heal();
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
    const applied = appliedValues(oldLeader);
    for (const value of lost) assert.not.ok(applied.includes(value), `${value} was overwritten`);
    for (const value of committed) assert.ok(applied.includes(value), `${value} is in the old leader's log`);
  });
});

test('fast back-up over 50 divergent entries', () => {
  const cluster = startCluster(5, { core: { appendEntriesMax: 64 } });
  withTrace(cluster, () => {
    const leader1 = waitForLeader(cluster);
    commitValues(cluster, freshValues(cluster, 1));
    const others = cluster.members.filter((member) => member !== leader1).map((member) => member.id);
    const [partner, ...majority] = others as [string, ...string[]];

    // The old leader and one follower take 50 entries that cannot commit.
    cluster.network.partition([[leader1.id, partner], majority]);
    for (const value of freshValues(cluster, 50)) cluster.propose(leader1.id, [value]);
    cluster.runTicks(5);

    // The majority elects a leader and commits 50 entries of its own.
    const leader2 = waitForLeader(cluster);
    assert.ok(majority.includes(leader2.id), 'the majority side elects the leader');
    commitValues(cluster, freshValues(cluster, 50), majority.map((id) => cluster.member(id)));

    // Now the new leader and one follower take 50 entries that cannot commit.
    const [follower, third] = majority.filter((id) => id !== leader2.id) as [string, string];
    cluster.network.partition([[leader2.id, follower], [third, leader1.id, partner]]);
    for (const value of freshValues(cluster, 50)) cluster.propose(leader2.id, [value]);
    cluster.runTicks(5);

    // The old leader's pair returns beside the third follower: they must skip
    // back over the 50 divergent entries in a few round trips.
    const rejectsBefore = cluster.deliveredCounts.get('appendReject') ?? 0;
    const leader3 = waitForLeader(cluster);
    assert.ok([third, leader1.id, partner].includes(leader3.id));
    commitValues(cluster, freshValues(cluster, 50), [third, leader1.id, partner].map((id) => cluster.member(id)));
    // One rejection per entry would be about 100 here, for two followers.
    const rejects = (cluster.deliveredCounts.get('appendReject') ?? 0) - rejectsBefore;
    assert.ok(rejects <= FAST_BACKUP_REJECTS_MAX, `${rejects} rejected appends to catch up`);

    // Everyone back together.
    cluster.network.heal();
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
    assert.ok(termOf(leader3) >= 3);
  });
});

test.run();
