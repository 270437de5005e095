// An append is acknowledged and the member that sent the acknowledgement is
// SIGKILLed at once, before it can do anything else: the message must survive
// on the others, and on the killed member after its restart. Run for the
// member that received the append (a follower, which forwarded it) and for
// the leader.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
import { missingOn, startFaultCluster, startWatchdog } from './fault-harness';

/** Kill-and-restart rounds per kind of member. */
const rounds = 3;
/** Appends in flight when the first acknowledgement arrives. */
const burstSize = 24;
const fileLimitMs = 60_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startFaultCluster();
  startWatchdog('ack-then-kill.test', fileLimitMs, () => tc.cluster.processes.forEach((p) => p.kill('SIGKILL')));
});

test.after(async () => {
  await tc.close();
});

/**
 * Sends a burst of appends to member `id` and SIGKILLs it in the callback of
 * the first acknowledgement. Returns every append acknowledged before the
 * process died, which includes replies that were already on the socket.
 */
async function appendThenKill(id: string, prefix: string): Promise<Map<string, number>> {
  const member = tc.cluster.member(id);
  const child = tc.cluster.processes.get(id)!;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const client = connect(member.grpc);
  const acknowledged = new Map<string, number>();
  const appends = Array.from({ length: burstSize }, (_, i) =>
    client.append(`${prefix}${i}`, 3000).then(
      (result) => {
        acknowledged.set(`${prefix}${i}`, result.index);
        child.kill('SIGKILL');
      },
      () => undefined,
    ),
  );
  await Promise.all(appends);
  await exited;
  client.close();
  return acknowledged;
}

async function killRound(id: string, prefix: string): Promise<void> {
  const acknowledged = await appendThenKill(id, prefix);
  assert.ok(acknowledged.size > 0, `${id} acknowledged at least one append before it died`);
  const survivors = tc.cluster.members.filter((m) => m.id !== id);
  await waitForLeader(tc.cluster, survivors.map((m) => m.id));
  await waitInSync(tc.cluster, survivors.map((m) => m.id), Math.max(...acknowledged.values()));
  for (const m of survivors) {
    assert.equal(await missingOn(acknowledged, m.grpc), [], `${m.id} stores every append ${id} acknowledged`);
  }
  tc.cluster.startMember(id);
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), Math.max(...acknowledged.values()));
  assert.equal(await missingOn(acknowledged, tc.cluster.member(id).grpc), [], `${id} stores them after its restart`);
}

test('receiving follower killed right after acknowledging', async () => {
  for (let round = 0; round < rounds; round++) {
    const leader = await waitForLeader(tc.cluster);
    const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
    await killRound(follower.id, `follower-${round}-`);
  }
});

test('leader killed right after acknowledging', async () => {
  for (let round = 0; round < rounds; round++) {
    const leader = await waitForLeader(tc.cluster);
    await killRound(leader.id, `leader-${round}-`);
  }
});

test.run();
