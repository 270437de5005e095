// Leadership handover in the Raft core: the leader stops taking proposals,
// brings the chosen follower up to date, and sends it timeoutNow. The follower
// campaigns at once, and the others grant its vote although they still hear
// from the old leader (pre-vote and check-quorum are on).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TestCluster } from './cluster';

const ids = ['a', 'b', 'c'];
/** testConfig's election timeout, in ticks. */
const electionTimeoutTicks = 10;

function otherThan(...excluded: string[]): string {
  return ids.find((id) => !excluded.includes(id))!;
}

test('handover elects the target without ticks', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const lastIndex = cluster.propose(leader, ['x', 'y']) + 1;
  const oldTerm = cluster.raft(leader).status().term;
  const target = otherThan(leader);

  assert.ok(cluster.raft(leader).transferLeadership(target), 'the handover starts');
  cluster.flush(leader);
  cluster.deliver();

  assert.equal(cluster.leaders(), [target]);
  const status = cluster.raft(target).status();
  assert.is(status.term, oldTerm + 1);
  assert.ok(status.lastLogIndex > lastIndex, 'the new leader keeps the log and adds its own entry');
  assert.is(cluster.raft(leader).status().leaderId, target, 'the old leader follows the new one');
  const next = cluster.propose(target, ['z']);
  for (const id of ids) assert.ok(cluster.raft(id).status().commitIndex >= next, `${id} commits the new leader's entry`);
});

test('handover waits for a lagging target', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const target = otherThan(leader);
  cluster.isolate(target);
  const lastIndex = cluster.propose(leader, ['x', 'y', 'z']) + 2;
  assert.ok(cluster.raft(target).status().lastLogIndex < lastIndex, 'the target missed the entries');

  assert.ok(cluster.raft(leader).transferLeadership(target));
  cluster.flush(leader);
  cluster.deliver();
  assert.equal(cluster.leaders(), [leader], 'no handover while the target is cut off');

  // Heartbeat responses show the leader that the target is back, and appends
  // catch it up. All within the election timeout, before the handover ends.
  cluster.heal();
  for (let tick = 1; tick < electionTimeoutTicks && cluster.leaders()[0] !== target; tick += 1) cluster.tick(1, [leader]);
  assert.equal(cluster.leaders(), [target]);
  assert.ok(cluster.raft(target).status().commitIndex >= lastIndex, 'the new leader has every committed entry');
});

test('proposals rejected during a handover', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const target = otherThan(leader);
  cluster.isolate(target);
  cluster.raft(leader).transferLeadership(target);

  const result = cluster.raft(leader).propose([new Uint8Array([1])]);
  assert.is(result.ok, false);
  assert.equal(result, { ok: false, leaderId: null });
});

test('handover abandoned after an election timeout', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const target = otherThan(leader);
  cluster.isolate(target);
  cluster.raft(leader).transferLeadership(target);

  cluster.tick(electionTimeoutTicks, [leader, otherThan(leader, target)]);
  assert.equal(cluster.leaders().filter((id) => id !== target), [leader], 'the leader leads on');
  assert.ok(cluster.raft(leader).propose([new Uint8Array([1])]).ok, 'it takes proposals again');
});

test('handover rejected for self or stranger', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  assert.is(cluster.raft(leader).transferLeadership(leader), false);
  assert.is(cluster.raft(leader).transferLeadership('z'), false);
  assert.is(cluster.raft(otherThan(leader)).transferLeadership(leader), false, 'a follower cannot hand over');
  assert.ok(cluster.raft(leader).propose([new Uint8Array([1])]).ok, 'the leader still takes proposals');
});

test('handover votes sent again after a drop', () => {
  const five = ['a', 'b', 'c', 'd', 'e'];
  const cluster = new TestCluster(five);
  const leader = cluster.electLeader();
  const target = five.find((id) => id !== leader)!;
  // The target's first vote requests reach only the old leader, as when it
  // has no connection yet to the followers it never talked to.
  let dropping = true;
  cluster.intercept = (message) =>
    dropping && message.type === 'vote' && message.from === target && message.to !== leader ? null : message;
  cluster.raft(leader).transferLeadership(target);
  cluster.flush(leader);
  cluster.deliver();
  assert.is(cluster.raft(target).status().role, 'candidate', 'one vote besides its own is not a majority of five');

  dropping = false;
  cluster.tick(2, [target]);
  assert.equal(cluster.leaders(), [target]);
});

test('member leaving elections ignores timeoutNow', () => {
  const cluster = new TestCluster(ids);
  const leader = cluster.electLeader();
  const target = otherThan(leader);
  const term = cluster.raft(leader).status().term;
  cluster.raft(target).leaveElections();
  cluster.raft(leader).transferLeadership(target);
  cluster.flush(leader);
  cluster.deliver();
  assert.is(cluster.raft(target).status().role, 'follower');
  assert.is(cluster.raft(target).status().term, term, 'no election started');

  cluster.isolate(leader);
  cluster.tick(3 * electionTimeoutTicks, [target]);
  assert.is(cluster.raft(target).status().role, 'follower', 'its election timer starts none either');
});

test('timeoutNow ignored by a candidate', () => {
  const cluster = new TestCluster(ids, { preVote: false, checkQuorum: false });
  const leader = cluster.electLeader();
  const target = otherThan(leader);
  cluster.isolate(target);
  cluster.tick(2 * electionTimeoutTicks, [target]);
  const term = cluster.raft(target).status().term;
  assert.is(cluster.raft(target).status().role, 'candidate');

  cluster.raft(target).step({ type: 'timeoutNow', from: leader, to: target, term });
  assert.is(cluster.raft(target).status().term, term, 'no new election from timeoutNow');
});

test.run();
