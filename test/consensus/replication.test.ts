// Log replication by the Raft core: commit, the current-term commit rule, fast
// back-off, batching of proposals and recovery from lost appends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AppendRequest, AppendResponse, Entry, Message, NodeId, RestoredState } from '../../src/consensus/types';
import { RaftLog } from '../../src/consensus/log';
import { Replication } from '../../src/consensus/replication';
import { bytes, emptyRestoredState, entriesWithTerms, MemoryStore, TestCluster, TestMember, testConfig } from './cluster';

const ids = ['a', 'b', 'c'];

function appendsTo(messages: readonly Message[], to: NodeId): AppendRequest[] {
  return messages.filter((m): m is AppendRequest => m.type === 'append' && m.to === to);
}

/** Returns a store whose log has entries with `terms` and whose first `committed` entries are applied. */
function storeWith(terms: readonly number[], term: number, committed: number): MemoryStore {
  const entries = entriesWithTerms(1, terms);
  const restored: RestoredState = {
    hardState: { term, vote: null, commit: committed },
    snapshot: { index: 0, term: 0 },
    logStart: { index: 0, term: 0 },
    entries,
    appliedIndex: committed,
  };
  return MemoryStore.from(restored, entries.slice(0, committed));
}

/** Makes the network drop the first message that `matches`; `done` tells whether it did. */
function dropFirst(cluster: TestCluster, matches: (message: Message) => boolean): { readonly done: boolean } {
  const drop = { done: false };
  cluster.intercept = (message) => {
    if (drop.done || !matches(message)) return message;
    drop.done = true;
    return null;
  };
  return drop;
}

function dataOf(entries: readonly Entry[]): string[] {
  return entries.filter((e) => e.data.byteLength > 0).map((e) => new TextDecoder().decode(e.data));
}

test('replicates, commits and applies on every member', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const firstIndex = cluster.propose(leader, ['one', 'two', 'three']);
  const lastIndex = firstIndex + 2;
  for (const id of ids) {
    const status = cluster.raft(id).status();
    assert.is(status.commitIndex, lastIndex, `${id} commit`);
    assert.is(status.appliedIndex, lastIndex, `${id} applied`);
    assert.equal(dataOf(cluster.member(id).store.applied), ['one', 'two', 'three'], `${id} state machine`);
  }
});

test('follower acknowledges only in the Ready that persists', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const follower = ids.find((id) => id !== leader) as string;
  cluster.raft(leader).propose([bytes('x')]);
  const append = appendsTo(cluster.raft(leader).ready().messages, follower)[0] as AppendRequest;
  cluster.raft(follower).step(append);
  const ready = cluster.raft(follower).ready();
  const response = ready.messages.find((m): m is AppendResponse => m.type === 'appendResponse');
  assert.is(response?.success, true);
  assert.is(ready.entries[ready.entries.length - 1]?.index, response?.matchIndex, 'the entries travel with the ack');
});

test('leader counts itself only after its own fsync', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const [follower, other] = ids.filter((id) => id !== leader) as [string, string];
  cluster.isolate(other);
  const raft = cluster.raft(leader);
  const before = raft.status().commitIndex;
  raft.propose([bytes('x')]);
  const ready = raft.ready();
  cluster.raft(follower).step(appendsTo(ready.messages, follower)[0] as AppendRequest);
  for (const message of cluster.member(follower).persist()) raft.step(message);
  assert.is(raft.status().commitIndex, before, 'one follower alone is no majority of three');
  cluster.member(leader).store.perform(ready, undefined);
  raft.advance(ready);
  assert.is(raft.status().commitIndex, before + 1);
});

test('entry of an earlier term is not committed by counting', () => {
  // a has entry 2 of term 2, which b lacks, and c is cut off. a wins term 4.
  const stores = new Map([
    ['a', storeWith([1, 2], 3, 1)],
    ['b', storeWith([1], 3, 1)],
    ['c', storeWith([1], 3, 1)],
  ]);
  const cluster = new TestCluster(ids, { appendEntriesMax: 1 }, stores);
  cluster.isolate('c');
  // Let b get entry 2 but never the new leader's entry 3.
  cluster.intercept = (message) =>
    message.type === 'append' ? { ...message, entries: message.entries.filter((e) => e.index < 3) } : message;
  assert.is(cluster.electLeader(), 'a');
  const leader = cluster.raft('a').status();
  assert.is(leader.term, 4);
  assert.is(leader.peers.find((p) => p.id === 'b')?.matchIndex, 2, 'entry 2 is on a majority');
  assert.is(leader.commitIndex, 1, 'but its term is 2, not 4');
  cluster.intercept = (message) => message;
  cluster.tick(25);
  assert.is(cluster.raft('a').status().commitIndex, 3, 'entry 3 of term 4 commits entry 2 with it');
  assert.is(cluster.raft('b').status().commitIndex, 3);
});

test('fast back-off over 50 divergent entries', () => {
  const leaderTerms = [...Array<number>(10).fill(1), ...Array<number>(20).fill(3)];
  const divergentTerms = [...Array<number>(10).fill(1), ...Array<number>(50).fill(2)];
  const stores = new Map([
    ['a', storeWith(leaderTerms, 3, 10)],
    ['b', storeWith(divergentTerms, 3, 10)],
    ['c', storeWith(leaderTerms, 3, 10)],
  ]);
  const cluster = new TestCluster(ids, {}, stores);
  const leader = cluster.electLeader();
  assert.is.not(leader, 'b');
  const toB = cluster.delivered.filter((m) => m.type === 'append' && m.to === 'b');
  const rejections = cluster.delivered.filter((m) => m.type === 'appendResponse' && m.from === 'b' && !m.success);
  assert.ok(rejections.length <= 1, `${rejections.length} rejections`);
  assert.ok(toB.length <= 3, `${toB.length} appends to b`);
  const follower = cluster.raft('b');
  assert.is(follower.status().lastLogIndex, 31);
  assert.is(follower.termAt(31), cluster.raft(leader).status().term);
  assert.is(follower.termAt(11), 3, 'the divergent suffix is replaced');
  assert.is(follower.status().commitIndex, 31);
});

test('proposals between two Ready batches share one append', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  cluster.propose(leader, ['warm-up']);
  const raft = cluster.raft(leader);
  for (const text of ['p1', 'p2', 'p3', 'p4', 'p5']) raft.propose([bytes(text)]);
  const messages = raft.ready().messages;
  for (const follower of ids.filter((id) => id !== leader)) {
    const appends = appendsTo(messages, follower);
    assert.is(appends.length, 1, `one append to ${follower}`);
    assert.equal(dataOf(appends[0]?.entries ?? []), ['p1', 'p2', 'p3', 'p4', 'p5']);
  }
});

test('pipelines up to inflightAppendsMax appends', () => {
  const cluster = new TestCluster(ids, { appendEntriesMax: 2, inflightAppendsMax: 3 });
  const leader = cluster.electLeader();
  cluster.propose(leader, ['warm-up']);
  const raft = cluster.raft(leader);
  raft.propose(['1', '2', '3', '4', '5', '6', '7', '8'].map(bytes));
  const follower = ids.find((id) => id !== leader) as string;
  const appends = appendsTo(raft.ready().messages, follower);
  assert.equal(
    appends.map((m) => m.entries.length),
    [2, 2, 2],
  );
  const peer = raft.status().peers.find((p) => p.id === follower);
  assert.is(peer?.state, 'replicate');
});

test('lost append with no later traffic is resent', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  cluster.propose(leader, ['warm-up']);
  const [follower, other] = ids.filter((id) => id !== leader) as [string, string];
  // Without the other follower nothing commits, so no later append reveals the gap.
  cluster.isolate(other);
  let dropped = false;
  cluster.intercept = (message) => {
    if (dropped || message.type !== 'append' || message.to !== follower || message.entries.length === 0) return message;
    dropped = true;
    return null;
  };
  const index = cluster.propose(leader, ['lost once']);
  assert.ok(dropped);
  assert.ok(cluster.raft(follower).status().lastLogIndex < index);
  cluster.tick(30);
  assert.is(cluster.raft(follower).status().appliedIndex, index);
});

test('lost append followed by more appends recovers', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  cluster.propose(leader, ['warm-up']);
  const follower = ids.find((id) => id !== leader) as string;
  dropFirst(cluster, (m) => m.type === 'append' && m.to === follower && m.entries.length > 0);
  cluster.propose(leader, ['lost']);
  const last = cluster.propose(leader, ['after']);
  assert.is(cluster.raft(follower).status().appliedIndex, last);
  assert.equal(dataOf(cluster.member(follower).store.applied).slice(-2), ['lost', 'after']);
});

test('commit notices get no reply', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  cluster.propose(leader, ['warm-up']);
  const before = cluster.delivered.length;
  const index = cluster.propose(leader, ['x']);
  const delivered = cluster.delivered.slice(before);
  const notices = delivered.filter((m): m is AppendRequest => m.type === 'append' && m.entries.length === 0);
  assert.is(notices.length, 2, 'one commit notice per follower');
  for (const notice of notices) {
    assert.is(notice.noReply, true, `notice to ${notice.to}`);
    assert.is(notice.commit, index);
  }
  const replies = delivered.filter((m) => m.type === 'appendResponse');
  assert.is(replies.length, 2, 'only the appends with entries get replies');
  for (const id of ids) assert.is(cluster.raft(id).status().appliedIndex, index, `${id} applied`);
});

test('quorum index of five members', () => {
  const five = ['a', 'b', 'c', 'd', 'e'];
  const log = new RaftLog({ ...emptyRestoredState(), hardState: { term: 1, vote: null, commit: 0 }, entries: entriesWithTerms(1, [1, 1, 1, 1, 1, 1, 1, 1, 1]) });
  // Own persisted index, then the match indexes of b to e, and the index stored on three of five.
  const cases: [number, number[], number][] = [
    [9, [1, 2, 3, 4], 3],
    [9, [4, 3, 2, 1], 3],
    [0, [5, 7, 6, 9], 6],
    [2, [2, 2, 8, 8], 2],
    [5, [0, 0, 0, 0], 0],
  ];
  for (const [own, peers, expected] of cases) {
    const replication = new Replication(testConfig('a', five, 1), 1, 9);
    peers.forEach((matchIndex, i) => {
      replication.handleAppendResponse({ type: 'appendResponse', from: five[i + 1]!, to: 'a', term: 1, success: true, matchIndex, rejectHintIndex: 0, rejectHintTerm: 0 }, log);
    });
    assert.is(replication.quorumMatchIndex(own), expected, `own ${own}, peers ${peers.join(' ')}`);
  }
});

/** Replaces the member by one on an empty store, as a restart on an empty data folder does. */
function wipe(cluster: TestCluster, id: string): void {
  const config = cluster.member(id).config;
  cluster.members.set(id, new TestMember(config, new MemoryStore()));
}

test('wiped follower catches up from the log', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const wiped = ids.find((id) => id !== leader)!;
  cluster.propose(leader, ['a', 'b', 'c']);
  wipe(cluster, wiped);
  // Heartbeats carry the match index the leader recorded, above the empty log.
  cluster.tick(10);
  const last = cluster.propose(leader, ['d']);
  assert.equal(cluster.leaders(), [leader], 'the same leader throughout');
  assert.is(cluster.raft(wiped).status().appliedIndex, last);
  assert.equal(cluster.member(wiped).store.applied, cluster.member(leader).store.applied);
  assert.is(cluster.raft(leader).status().peers.find((p) => p.id === wiped)?.matchIndex, last);
});

test('wiped follower gets a snapshot', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const wiped = ids.find((id) => id !== leader)!;
  cluster.propose(leader, Array.from({ length: 20 }, (_, i) => `m${i}`));
  const raft = cluster.raft(leader);
  const compaction = raft.compact(raft.status().appliedIndex, 2);
  cluster.member(leader).store.snapshot = compaction.snapshot;
  wipe(cluster, wiped);
  cluster.tick(10);
  assert.ok(cluster.delivered.some((m) => m.type === 'snapshot' && m.to === wiped), 'a snapshot went to the wiped member');
  const last = cluster.propose(leader, ['after']);
  assert.is(cluster.raft(wiped).status().appliedIndex, last);
  assert.equal(cluster.member(wiped).store.applied, cluster.member(leader).store.applied);
});

test('heartbeats recover a lost acknowledgement', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  cluster.propose(leader, ['warm-up']);
  const follower = ids.find((id) => id !== leader) as string;
  const drop = dropFirst(cluster, (m) => m.type === 'appendResponse' && m.from === follower);
  const index = cluster.propose(leader, ['x']);
  assert.ok(drop.done, 'the acknowledgement was dropped');
  const matchOf = (): number | undefined => cluster.raft(leader).status().peers.find((p) => p.id === follower)?.matchIndex;
  assert.is(matchOf(), index - 1, 'the leader has not heard of the entry');
  cluster.tick(30);
  assert.is(matchOf(), index, 'heartbeat replies led the leader to probe and learn the match');
});

test('append already present is skipped, not rewritten', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const follower = ids.find((id) => id !== leader) as string;
  cluster.propose(leader, ['x', 'y']);
  const raft = cluster.raft(follower);
  const lastIndex = raft.status().lastLogIndex;
  const term = raft.status().term;
  const stale: AppendRequest = {
    type: 'append',
    from: leader,
    to: follower,
    term,
    prevLogIndex: lastIndex - 2,
    prevLogTerm: raft.termAt(lastIndex - 2) as number,
    entries: cluster.member(follower).store.entries.slice(-2),
    commit: 0,
  };
  raft.step(stale);
  const ready = raft.ready();
  assert.equal(ready.entries, [], 'nothing to persist again');
  assert.is(raft.status().lastLogIndex, lastIndex);
});

test('stale leader learns the new term from a rejected append', () => {
  const cluster = new TestCluster(ids);
  const oldLeader = cluster.electLeader();
  cluster.isolate(oldLeader);
  const newLeader = cluster.electLeader();
  cluster.heal();
  cluster.raft(oldLeader).propose([bytes('from the past')]);
  cluster.flush(oldLeader);
  cluster.deliver();
  assert.is(cluster.raft(oldLeader).status().role, 'follower');
  cluster.tick(5);
  assert.is(cluster.raft(oldLeader).status().leaderId, newLeader);
  const oldLeaderLog = cluster.member(oldLeader).store.applied;
  assert.not.ok(dataOf(oldLeaderLog).includes('from the past'), 'the uncommitted entry was replaced');
});

test.run();
