// The fsync window of replog's Member: a Ready is started (leader's early
// messages, log write without fsync) and finished after the fsync (other
// messages, apply, advance), and the member steps messages, ticks and
// proposals in between, applying entries that earlier Readies stored. A
// crash in the window keeps or drops the write.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType, type Entry, type Message } from '../../src/consensus/types';
import { InvariantChecker } from '../../src/sim/invariants';
import { Member } from '../../src/sim/member';
import { TIME_UNITS_PER_TICK, UNRELIABLE_NETWORK } from '../../src/sim/network';
import { Rng } from '../../src/sim/rng';
import { InvariantViolation } from '../../src/sim/violation';
import { assertSameStateMachines, commitValues, freshValues, startCluster, waitForLeader, withTrace } from './helpers';

function entry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array([index]) };
}

function violationOf(body: () => void): InvariantViolation | null {
  try {
    body();
  } catch (error) {
    if (error instanceof InvariantViolation) return error;
    throw error;
  }
  return null;
}

test('checker treats an unsynced write as not stored', () => {
  const member = new Member('n1', TIME_UNITS_PER_TICK);
  const checker = new InvariantChecker([member, new Member('n2', TIME_UNITS_PER_TICK), new Member('n3', TIME_UNITS_PER_TICK)]);
  member.store.persist([], { term: 2, vote: 'n2', commit: 0 });
  member.store.write([entry(1, 2), entry(2, 2)], null);
  const ack: Message = { type: 'appendResponse', from: 'n1', to: 'n2', term: 2, success: true, matchIndex: 2, rejectHintIndex: 0, rejectHintTerm: 0 };

  const early = violationOf(() => checker.checkSent(member, ack));
  assert.is(early?.invariant, 'durable before send', 'an acknowledgement before the fsync is reported');
  assert.is(member.store.lastIndex(), 0, 'reads leave out the unsynced entries');

  member.store.sync();
  assert.is(violationOf(() => checker.checkSent(member, ack)), null, 'the same acknowledgement after the fsync passes');
  assert.is(member.store.lastIndex(), 2, 'the synced entries are stored');
});

test('dropped unsynced write leaves the store as before', () => {
  const member = new Member('n1', TIME_UNITS_PER_TICK);
  member.store.persist([entry(1, 1)], { term: 1, vote: null, commit: 1 });
  member.store.write([entry(2, 1)], { term: 2, vote: 'n1', commit: 1 });
  member.store.dropUnsynced();
  const loaded = member.store.load();
  assert.is(loaded.entries.length, 1, 'only the synced entry is loaded');
  assert.is(loaded.hardState.term, 1, 'the synced term is loaded');
  assert.is(member.store.hasUnsynced, false);
});

test('leader sends appends before its own fsync', () => {
  const cluster = startCluster(3, { seed: 21, readySplitRate: 1 });
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    // A committed value moves the followers from probe to pipelined replication.
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    const sentAppendIndexes = new Set<number>();
    cluster.sendObserver = (message) => {
      if (message.type === 'append' && message.from === leader.id) {
        for (const sent of message.entries) sentAppendIndexes.add(sent.index);
      }
    };
    const proposed = cluster.propose(leader.id, freshValues(cluster, 2));
    assert.ok(proposed?.ok, 'the leader accepts the proposal');
    const firstIndex = proposed?.ok === true ? proposed.firstIndex : 0;
    const inWindow = cluster.runEventsUntil(() => leader.inflight !== null && leader.inflight.ready.entries.length > 0, 20);
    assert.ok(inWindow, 'the leader waits for the fsync of its entries');
    assert.ok(sentAppendIndexes.has(firstIndex), 'the append left before the fsync');
    assert.ok(leader.store.lastIndex() < firstIndex, 'the entries are not yet stored on the leader');
    cluster.sendObserver = null;
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
  });
});

test('members step input while their fsync is pending', () => {
  const cluster = startCluster(5, { seed: 22, readySplitRate: 1, faults: UNRELIABLE_NETWORK });
  withTrace(cluster, () => {
    waitForLeader(cluster);
    for (let round = 0; round < 20; round += 1) commitValues(cluster, freshValues(cluster, 3));
    waitForLeader(cluster);
    assertSameStateMachines(cluster);
    const lines = cluster.trace.tail().lines;
    assert.ok(lines.some((line) => / wrote /.test(line)), 'some Readies waited for their fsync');
  });
});

test('stored entries applied during fsync', () => {
  const cluster = startCluster(3, { seed: 24, readySplitRate: 1 });
  withTrace(cluster, () => {
    const leader = waitForLeader(cluster);
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    // A proposal every tick, so new entries wait for their fsync while
    // acknowledgements of earlier ones arrive.
    for (let round = 0; round < 30; round += 1) {
      cluster.propose(leader.id, freshValues(cluster, 1));
      cluster.runTicks(1);
    }
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
    const lines = cluster.trace.tail().lines;
    assert.ok(lines.some((line) => / applied during fsync /.test(line)), 'some entries were applied while a write waited');
  });
});

test('crashes in the fsync window keep acknowledged values', () => {
  // Each round crashes a member whose Ready waits for its fsync, the leader
  // in half of them; the crash keeps or drops the unsynced write.
  const cluster = startCluster(5, { seed: 23, readySplitRate: 1, readyDeferRate: 0.3 });
  const rng = new Rng(23);
  let crashes = 0;
  withTrace(cluster, () => {
    for (let round = 0; round < 60; round += 1) {
      const leader = cluster.leader();
      if (leader !== undefined) cluster.propose(leader.id, freshValues(cluster, rng.int(1, 3)));
      const targetLeader = rng.chance(0.5);
      const targets = (): Member[] =>
        cluster.upMembers().filter((member) => member.inflight !== null && (member === cluster.leader()) === targetLeader);
      if (cluster.runEventsUntil(() => targets().length > 0, 5)) {
        const victim = rng.pick(targets());
        cluster.crash(victim.id);
        crashes += 1;
        cluster.runTicks(rng.int(0, 3));
        cluster.restart(victim.id);
      }
      cluster.runTicks(rng.int(1, 4));
    }
    assert.ok(crashes >= 20, `${crashes} crashes in the fsync window`);
    waitForLeader(cluster);
    commitValues(cluster, freshValues(cluster, 1), cluster.members);
    assertSameStateMachines(cluster);
    cluster.ledger.checkFinalLog((index) => cluster.checker.committedKeyAt(index));
    assert.ok(cluster.ledger.acknowledgedCount() > 0, 'some values were acknowledged');
  });
});

test.run();
