// Snapshots in the Raft core: compaction, snapshot messages to lagging
// followers, and installing on the receiver.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Raft } from '../../src/consensus/raft';
import type { AppendResponse, Message, RestoredState } from '../../src/consensus/types';
import { emptyRestoredState, entriesWithTerms, TestCluster, testConfig } from './cluster';

const ids = ['a', 'b', 'c'];

function appendResponses(messages: readonly Message[]): AppendResponse[] {
  return messages.filter((m): m is AppendResponse => m.type === 'appendResponse');
}

function followerWithLog(terms: readonly number[], commit: number): Raft {
  const restored: RestoredState = {
    ...emptyRestoredState(),
    hardState: { term: 3, vote: null, commit },
    entries: entriesWithTerms(1, terms),
    appliedIndex: commit,
  };
  return new Raft(testConfig('b', ids, 1), restored);
}

test('snapshot message installs and replication continues', () => {
  const follower = followerWithLog([1, 1, 2], 1);
  follower.step({ type: 'snapshot', from: 'a', to: 'b', term: 3, snapshot: { index: 100, term: 3 } });

  const ready = follower.ready();
  assert.equal(ready.snapshot, { index: 100, term: 3 });
  assert.equal(ready.entries, []);
  assert.equal(ready.hardState, { term: 3, vote: null, commit: 100 });
  assert.equal(appendResponses(ready.messages)[0], {
    type: 'appendResponse',
    from: 'b',
    to: 'a',
    term: 3,
    success: true,
    matchIndex: 100,
    rejectHintIndex: 0,
    rejectHintTerm: 0,
  });

  follower.advance(ready);
  const status = follower.status();
  assert.is(status.commitIndex, 100);
  assert.is(status.appliedIndex, 100);
  assert.is(status.snapshotIndex, 100);
  assert.is(follower.termAt(3), undefined, 'the old log is gone');

  follower.step({
    type: 'append',
    from: 'a',
    to: 'b',
    term: 3,
    prevLogIndex: 100,
    prevLogTerm: 3,
    entries: entriesWithTerms(101, [3, 3]),
    commit: 102,
  });
  const next = follower.ready();
  assert.equal(next.entries.map((e) => e.index), [101, 102]);
  assert.equal(next.committedEntries.map((e) => e.index), [101, 102]);
  assert.is(appendResponses(next.messages)[0]?.matchIndex, 102);
});

test('snapshot at or below commit acknowledged at commit', () => {
  const follower = followerWithLog([1, 1, 2, 2], 3);
  follower.step({ type: 'snapshot', from: 'a', to: 'b', term: 3, snapshot: { index: 2, term: 1 } });
  const ready = follower.ready();
  assert.is(ready.snapshot, null);
  const response = appendResponses(ready.messages)[0];
  assert.is(response?.success, true);
  assert.is(response?.matchIndex, 3);
  assert.is(follower.status().lastLogIndex, 4, 'the log is kept');
});

test('snapshot entry already in log keeps log', () => {
  const follower = followerWithLog([1, 1, 2, 2, 3], 1);
  follower.step({ type: 'snapshot', from: 'a', to: 'b', term: 3, snapshot: { index: 4, term: 2 } });
  const ready = follower.ready();
  assert.is(ready.snapshot, null);
  assert.is(follower.status().commitIndex, 4);
  assert.is(follower.status().lastLogIndex, 5, 'entry 5 may be acknowledged already');
  assert.is(appendResponses(ready.messages)[0]?.matchIndex, 4);
});

test('compact drops entries below the kept window', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const first = cluster.propose(leader, ['1', '2', '3', '4', '5', '6', '7', '8']);
  const raft = cluster.raft(leader);
  const applied = raft.status().appliedIndex;
  const result = raft.compact(applied - 1, 3);
  assert.equal(result.snapshot, { index: applied - 1, term: raft.status().term });
  assert.is(result.logStart.index, applied - 4);
  assert.is(raft.termAt(applied - 5), undefined);
  assert.is(raft.termAt(applied - 4), result.logStart.term);
  assert.is(raft.status().snapshotIndex, applied - 1);
  assert.ok(first < applied);
});

test('compact rejects an index above applied', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const raft = cluster.raft(leader);
  raft.propose([new Uint8Array([1])]);
  const lastIndex = raft.status().lastLogIndex;
  assert.throws(() => raft.compact(lastIndex, 0), /above the applied index/);
  assert.throws(() => raft.compact(0, -1), /keepEntries/);
});

test('lagging follower gets a snapshot after compact', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const lagging = ids.find((id) => id !== leader) as string;
  cluster.isolate(lagging);
  const texts = Array.from({ length: 20 }, (_, i) => `m${i}`);
  cluster.propose(leader, texts);
  const raft = cluster.raft(leader);
  const applied = raft.status().appliedIndex;
  const compaction = raft.compact(applied, 2);
  cluster.member(leader).store.snapshot = compaction.snapshot;
  cluster.heal();
  cluster.tick(4);
  const snapshots = cluster.delivered.filter((m) => m.type === 'snapshot' && m.to === lagging);
  assert.is(snapshots.length, 1);
  const status = cluster.raft(lagging).status();
  assert.is(status.snapshotIndex, applied);
  assert.is(status.appliedIndex, raft.status().appliedIndex);
  assert.equal(cluster.member(lagging).store.applied, cluster.member(leader).store.applied);
  const last = cluster.propose(leader, ['after snapshot']);
  assert.is(cluster.raft(lagging).status().appliedIndex, last);
  assert.is(raft.status().peers.find((p) => p.id === lagging)?.state, 'replicate');
});

test('follower inside the kept window gets entries, not a snapshot', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const lagging = ids.find((id) => id !== leader) as string;
  cluster.isolate(lagging);
  const before = cluster.raft(lagging).status().lastLogIndex;
  cluster.propose(leader, ['1', '2', '3']);
  const raft = cluster.raft(leader);
  raft.compact(raft.status().appliedIndex, 10);
  cluster.heal();
  cluster.tick(4);
  assert.ok(raft.termAt(before) !== undefined);
  assert.is(cluster.delivered.filter((m) => m.type === 'snapshot').length, 0);
  assert.is(cluster.raft(lagging).status().appliedIndex, raft.status().appliedIndex);
});

test('lost snapshot message is sent again after a timeout', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const lagging = ids.find((id) => id !== leader) as string;
  cluster.isolate(lagging);
  cluster.propose(leader, ['1', '2', '3', '4']);
  const raft = cluster.raft(leader);
  raft.compact(raft.status().appliedIndex, 0);
  cluster.heal();
  let droppedSnapshots = 0;
  cluster.intercept = (message) => {
    if (message.type !== 'snapshot' || droppedSnapshots > 0) return message;
    droppedSnapshots += 1;
    return null;
  };
  cluster.tick(4);
  assert.is(droppedSnapshots, 1);
  assert.is(raft.status().peers.find((p) => p.id === lagging)?.state, 'snapshot');
  cluster.tick(25);
  assert.is(cluster.delivered.filter((m) => m.type === 'snapshot').length, 1, 'the second one arrived');
  assert.is(cluster.raft(lagging).status().appliedIndex, raft.status().appliedIndex);
});

test.run();
