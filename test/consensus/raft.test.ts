// Elections of the Raft core: leader election, re-election, votes, restart,
// pre-vote and check-quorum.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Raft } from '../../src/consensus/raft';
import type { Message, VoteResponse } from '../../src/consensus/types';
import { emptyRestoredState, entriesWithTerms, TestCluster, testConfig } from './cluster';

const ids = ['a', 'b', 'c'];

function voteResponses(messages: readonly Message[]): VoteResponse[] {
  return messages.filter((m): m is VoteResponse => m.type === 'voteResponse');
}

test('single election elects one leader', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const term = cluster.raft(leader).status().term;
  assert.is(cluster.leaders().length, 1);
  assert.is(term, 1);
  for (const id of ids) {
    assert.is(cluster.raft(id).status().leaderId, leader, `${id} knows the leader`);
    assert.is(cluster.raft(id).status().term, term, `${id} is in the leader's term`);
  }
});

test('new leader elected after leader is cut off', () => {
  const cluster = new TestCluster(ids);
  const oldLeader = cluster.electLeader();
  const oldTerm = cluster.raft(oldLeader).status().term;
  cluster.isolate(oldLeader);
  const newLeader = cluster.electLeader();
  assert.is.not(newLeader, oldLeader);
  assert.ok(cluster.raft(newLeader).status().term > oldTerm);
  cluster.heal();
  cluster.tick(5);
  assert.equal(cluster.leaders(), [newLeader]);
  assert.is(cluster.raft(oldLeader).status().leaderId, newLeader);
});

test('lone member elects itself and commits', () => {
  const cluster = new TestCluster(['solo']);
  cluster.electLeader();
  const firstIndex = cluster.propose('solo', ['x', 'y']);
  const status = cluster.raft('solo').status();
  assert.is(status.role, 'leader');
  assert.is(status.commitIndex, firstIndex + 1);
  assert.is(status.appliedIndex, firstIndex + 1);
  assert.is(cluster.member('solo').store.applied.length, firstIndex + 1);
});

test('vote rejected for out-of-date log', () => {
  const restored = { ...emptyRestoredState(), hardState: { term: 2, vote: null, commit: 0 }, entries: entriesWithTerms(1, [1, 2]) };
  const voter = new Raft(testConfig('a', ids, 1, { preVote: false, checkQuorum: false }), restored);
  const request = { type: 'vote', from: 'b', to: 'a', term: 3, preVote: false } as const;
  voter.step({ ...request, lastLogIndex: 5, lastLogTerm: 1 });
  voter.step({ ...request, from: 'c', lastLogIndex: 1, lastLogTerm: 2 });
  const responses = voteResponses(voter.ready().messages);
  assert.is(responses.length, 2);
  assert.is(responses[0]?.granted, false, 'older last term loses');
  assert.is(responses[1]?.granted, false, 'same term, shorter log loses');
  assert.is(voter.status().term, 3, 'a real vote request still raises the term');
});

test('vote granted for up-to-date log and persisted first', () => {
  const restored = { ...emptyRestoredState(), hardState: { term: 2, vote: null, commit: 0 }, entries: entriesWithTerms(1, [1, 2]) };
  const voter = new Raft(testConfig('a', ids, 1, { preVote: false, checkQuorum: false }), restored);
  voter.step({ type: 'vote', from: 'b', to: 'a', term: 3, preVote: false, lastLogIndex: 2, lastLogTerm: 2 });
  const ready = voter.ready();
  assert.equal(ready.hardState, { term: 3, vote: 'b', commit: 0 });
  assert.is(voteResponses(ready.messages)[0]?.granted, true);
});

test('restart keeps term, vote and log', () => {
  const restored = {
    ...emptyRestoredState(),
    hardState: { term: 5, vote: 'b', commit: 2 },
    entries: entriesWithTerms(1, [1, 3, 5]),
    appliedIndex: 2,
  };
  const member = new Raft(testConfig('a', ids, 1, { preVote: false, checkQuorum: false }), restored);
  const status = member.status();
  assert.is(status.term, 5);
  assert.is(status.lastLogIndex, 3);
  assert.is(status.commitIndex, 2);
  assert.is(status.appliedIndex, 2);
  assert.is(member.termAt(2), 3);
  const vote = { type: 'vote', to: 'a', term: 5, preVote: false, lastLogIndex: 3, lastLogTerm: 5 } as const;
  member.step({ ...vote, from: 'c' });
  member.step({ ...vote, from: 'b' });
  const responses = voteResponses(member.ready().messages);
  assert.is(responses[0]?.granted, false, 'the vote for b in term 5 survives the restart');
  assert.is(responses[1]?.granted, true, 'b may ask again');
});

test('restart hands out only entries after applied index', () => {
  const restored = {
    ...emptyRestoredState(),
    hardState: { term: 1, vote: 'a', commit: 1 },
    snapshot: { index: 2, term: 1 },
    logStart: { index: 1, term: 1 },
    entries: entriesWithTerms(2, [1, 1, 1]),
    appliedIndex: 3,
  };
  const member = new Raft(testConfig('a', ids, 1), restored);
  assert.is(member.status().commitIndex, 3, 'commit is at least the applied index');
  assert.is(member.hasReady(), true, 'the raised commit index is persisted');
  assert.equal(member.ready().committedEntries, []);
});

test('pre-vote: rejoining member does not raise the term', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const term = cluster.raft(leader).status().term;
  const follower = ids.find((id) => id !== leader) as string;
  cluster.isolate(follower);
  cluster.tick(100);
  const cutOff = cluster.raft(follower).status();
  assert.is(cutOff.term, term, 'pre-vote never succeeds, so the term stays');
  assert.is(cutOff.role, 'precandidate');
  cluster.heal();
  cluster.tick(5);
  assert.equal(cluster.leaders(), [leader]);
  assert.is(cluster.raft(leader).status().term, term);
  assert.is(cluster.raft(follower).status().leaderId, leader);
});

test('without pre-vote a rejoining member raises the term', () => {
  const cluster = new TestCluster(ids, { preVote: false, checkQuorum: false });
  const leader = cluster.electLeader();
  const term = cluster.raft(leader).status().term;
  const follower = ids.find((id) => id !== leader) as string;
  cluster.isolate(follower);
  cluster.tick(100);
  assert.ok(cluster.raft(follower).status().term > term);
});

test('pre-vote rejected while a leader is heard', () => {
  const voter = new Raft(testConfig('a', ids, 1, { checkQuorum: false }), emptyRestoredState());
  voter.step({ type: 'heartbeat', from: 'b', to: 'a', term: 1, commit: 0 });
  voter.ready();
  voter.step({ type: 'vote', from: 'c', to: 'a', term: 2, preVote: true, lastLogIndex: 5, lastLogTerm: 1 });
  const response = voteResponses(voter.ready().messages)[0];
  assert.is(response?.granted, false);
  assert.is(voter.status().term, 1, 'a pre-vote never changes the term');
});

test('pre-vote granted with the requested term, term unchanged', () => {
  const voter = new Raft(testConfig('a', ids, 1), emptyRestoredState());
  voter.step({ type: 'vote', from: 'c', to: 'a', term: 1, preVote: true, lastLogIndex: 0, lastLogTerm: 0 });
  const ready = voter.ready();
  const response = voteResponses(ready.messages)[0];
  assert.is(response?.granted, true);
  assert.is(response?.term, 1);
  assert.is(voter.status().term, 0);
  assert.is(ready.hardState, null, 'a pre-vote records no vote');
});

test('check-quorum: isolated leader steps down', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  cluster.isolate(leader);
  // The last heartbeat response came at most one heartbeat interval (2 ticks) ago.
  cluster.tick(8, [leader]);
  assert.is(cluster.raft(leader).status().role, 'leader', 'still leader within one election timeout');
  cluster.tick(2, [leader]);
  const status = cluster.raft(leader).status();
  assert.is(status.role, 'follower');
  assert.is(status.leaderId, null);
});

test('check-quorum: follower in lease ignores vote request', () => {
  const voter = new Raft(testConfig('a', ids, 1), emptyRestoredState());
  voter.step({ type: 'heartbeat', from: 'b', to: 'a', term: 1, commit: 0 });
  voter.ready();
  voter.step({ type: 'vote', from: 'c', to: 'a', term: 2, preVote: false, lastLogIndex: 5, lastLogTerm: 1 });
  assert.is(voter.status().term, 1, 'the term is not bumped');
  assert.equal(voteResponses(voter.ready().messages), [], 'no response at all');
});

test('higher term in a response makes a leader step down', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const term = cluster.raft(leader).status().term;
  const other = ids.find((id) => id !== leader) as string;
  cluster.raft(leader).step({ type: 'heartbeatResponse', from: other, to: leader, term: term + 3 });
  const status = cluster.raft(leader).status();
  assert.is(status.role, 'follower');
  assert.is(status.term, term + 3);
});

test('stale responses from older terms are ignored', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const term = cluster.raft(leader).status().term;
  const other = ids.find((id) => id !== leader) as string;
  const before = cluster.raft(leader).status().peers.find((p) => p.id === other);
  cluster.raft(leader).step({
    type: 'appendResponse',
    from: other,
    to: leader,
    term: term - 1,
    success: true,
    matchIndex: 100,
    rejectHintIndex: 0,
    rejectHintTerm: 0,
  });
  const after = cluster.raft(leader).status().peers.find((p) => p.id === other);
  assert.equal(after, before);
});

test('election timeout drawn in [T, 2T)', () => {
  for (const value of [0, 0.5, 0.999999]) {
    const member = new Raft(testConfig('a', ids, 1, { electionTimeoutTicks: 10, random: () => value }), emptyRestoredState());
    let ticks = 0;
    while (member.status().role === 'follower') {
      member.tick();
      ticks += 1;
    }
    assert.ok(ticks >= 10, `timeout ${ticks} for random ${value}`);
    assert.ok(ticks < 20, `timeout ${ticks} for random ${value}`);
  }
});

test('rejected pre-vote from higher term steps down', () => {
  const member = new Raft(testConfig('a', ids, 1, { random: () => 0 }), emptyRestoredState());
  for (let i = 0; i < 10; i += 1) member.tick();
  assert.is(member.status().role, 'precandidate');
  member.step({ type: 'voteResponse', from: 'b', to: 'a', term: 7, preVote: true, granted: false });
  const status = member.status();
  assert.is(status.role, 'follower');
  assert.is(status.term, 7);
});

test('role changes are logged with fields', () => {
  const lines: { message: string; fields: object }[] = [];
  const record = (fields: object, message: string): void => {
    lines.push({ message, fields });
  };
  const logger = { info: record, warn: record, debug: record };
  const member = new Raft(testConfig('solo', ['solo'], 1, { logger }), emptyRestoredState());
  for (let i = 0; i < 20; i += 1) member.tick();
  const messages = lines.map((line) => line.message);
  assert.ok(messages.includes('became precandidate'));
  assert.ok(messages.includes('became candidate'));
  const leader = lines.find((line) => line.message === 'became leader');
  assert.equal(leader?.fields, { term: 1, leaderId: 'solo', lastLogIndex: 1 });
});

test('invalid config is rejected with the field name', () => {
  assert.throws(() => new Raft(testConfig('z', ids, 1), emptyRestoredState()), /peers/);
  assert.throws(
    () => new Raft(testConfig('a', ids, 1, { heartbeatIntervalTicks: 10, electionTimeoutTicks: 10 }), emptyRestoredState()),
    /electionTimeoutTicks/,
  );
});

test.run();
