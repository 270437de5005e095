// A member that lost its data and rejoins with holdVotes grants no vote and
// does not campaign until a leader has caught it up, so neither it nor a
// member that lacks entries it had helped commit is elected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Message, VoteResponse } from '../../src/consensus/types';
import { MemoryStore, TestCluster, TestMember } from './cluster';

const ids = ['a', 'b', 'c'];

/** Replaces the member by one on an empty store that withholds its votes, as `replog node --rejoin` on an empty folder does. */
function rejoinEmpty(cluster: TestCluster, id: string): void {
  const config = { ...cluster.member(id).config, holdVotes: true };
  cluster.members.set(id, new TestMember(config, new MemoryStore()));
}

/**
 * Heals the network, elects a leader and commits one more entry, then checks
 * that every member applied it and kept the entries up to `last` that
 * `oldLeader` committed.
 */
function assertKeptAfterHeal(cluster: TestCluster, oldLeader: string, last: number): void {
  cluster.heal();
  cluster.tick(100);
  const leaderNow = cluster.electLeader();
  const final = cluster.propose(leaderNow, ['s']);
  for (const id of ids) {
    const applied = cluster.member(id).store.applied;
    assert.is(applied.length, final, `${id} applied everything`);
    assert.equal(applied.slice(0, last), cluster.member(oldLeader).store.applied.slice(0, last), `${id} kept the committed entries`);
  }
}

function voteResponses(messages: readonly Message[]): VoteResponse[] {
  return messages.filter((m): m is VoteResponse => m.type === 'voteResponse');
}

test('held votes until caught up', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  cluster.propose(leader, ['x', 'y']);
  const rejoined = ids.find((id) => id !== leader)!;
  const other = ids.find((id) => id !== leader && id !== rejoined)!;
  rejoinEmpty(cluster, rejoined);
  const raft = cluster.raft(rejoined);
  const term = cluster.raft(leader).status().term;

  raft.step({ type: 'vote', from: other, to: rejoined, term: term + 1, preVote: true, lastLogIndex: 9, lastLogTerm: term });
  raft.step({ type: 'vote', from: other, to: rejoined, term: term + 1, preVote: false, lastLogIndex: 9, lastLogTerm: term });
  const responses = voteResponses(cluster.member(rejoined).persist());
  assert.equal(responses.map((r) => r.granted), [false, false], 'no pre-vote and no vote before a leader caught it up');
  assert.ok(raft.votesHeld());

  // The vote request above raised its term, so the old leader's appends are
  // rejected; a new election among the others catches it up.
  cluster.tick(60);
  const leaderNow = cluster.leaders()[0]!;
  cluster.propose(leaderNow, ['z']);
  assert.is(raft.votesHeld(), false, 'caught up');
  assert.equal(cluster.member(rejoined).store.applied, cluster.member(leaderNow).store.applied);
});

test('stale candidate is not elected', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const [stale, rejoined] = ids.filter((id) => id !== leader) as [string, string];
  // The stale member misses entries that the leader commits with the other follower.
  cluster.isolate(stale);
  const last = cluster.propose(leader, ['p', 'q', 'r']) + 2;
  assert.is(cluster.raft(leader).status().commitIndex, last);
  // The follower loses its data and rejoins while the leader is cut off.
  rejoinEmpty(cluster, rejoined);
  cluster.heal();
  cluster.isolate(leader);
  cluster.tick(100, [stale, rejoined]);
  assert.equal(cluster.leaders().filter((id) => id !== leader), [], 'no leader without the entries');

  assertKeptAfterHeal(cluster, leader, last);
});

test('rejoining member does not campaign', () => {
  const cluster = new TestCluster(ids);
  // One member never gets an entry, so its log stays as empty as that of a
  // member that lost its data, and it would vote for one.
  const empty = 'c';
  cluster.isolate(empty);
  const leader = cluster.electLeader();
  const rejoined = ids.find((id) => id !== leader && id !== empty)!;
  const last = cluster.propose(leader, ['p', 'q']) + 1;
  assert.is(cluster.raft(leader).status().commitIndex, last);
  assert.is(cluster.raft(empty).status().lastLogIndex, 0, 'the cut-off follower has no entry');
  rejoinEmpty(cluster, rejoined);
  cluster.heal();
  cluster.isolate(leader);
  cluster.tick(100, [empty, rejoined]);
  assert.equal(cluster.leaders().filter((id) => id !== leader), [], 'the empty members elect no leader');
  assert.ok(cluster.raft(rejoined).votesHeld(), 'the rejoined member still withholds its votes');

  assertKeptAfterHeal(cluster, leader, last);
});

test.run();
