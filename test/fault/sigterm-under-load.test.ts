// A member gets SIGTERM while clients append through it. It must reply to or
// fail every append in flight, so none hangs until the client's deadline. It
// must exit 0 within its shutdown grace period and lose nothing acknowledged
// once it is back. Run for a follower and for the leader. A leader first hands
// its role to a follower, which campaigns at once.
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, waitFor, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
import { exitOf, missingOn, recordAppends, startFaultCluster, startWatchdog, type RecordedLoad } from './fault-harness';

const concurrency = 32;
const loadBeforeSignalMs = 1500;
/** Longer than the member's shutdown grace (3 s), so a hanging append shows as DEADLINE_EXCEEDED. */
const appendDeadlineMs = 8000;
/** Generous bound on SIGTERM to exit: the 3 s grace plus closing. */
const exitWithinMs = 6000;
/** Error codes an append may end with when its member stops: the call failed, retry elsewhere. */
const expectedCodes = new Set(['UNAVAILABLE']);
const fileLimitMs = 60_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startFaultCluster();
  startWatchdog('sigterm-under-load.test', fileLimitMs, () => tc.cluster.processes.forEach((p) => p.kill('SIGKILL')));
});

test.after(async () => {
  await tc.close();
});

interface TerminationResult {
  readonly code: number | null;
  readonly exitMs: number;
  readonly load: RecordedLoad;
}

/** Appends through member `id`, sends it SIGTERM, and waits for its exit and the last replies. */
async function loadAndTerminate(id: string, prefix: string): Promise<TerminationResult> {
  const client = connect(tc.cluster.member(id).grpc);
  const child = tc.cluster.processes.get(id)!;
  let exited = false;
  const load = recordAppends(client, prefix, { concurrency, done: () => exited, deadlineMs: appendDeadlineMs });
  await new Promise((resolve) => setTimeout(resolve, loadBeforeSignalMs));
  const signalledAt = performance.now();
  child.kill('SIGTERM');
  const code = await exitOf(child);
  const exitMs = performance.now() - signalledAt;
  exited = true;
  const result = await load;
  client.close();
  const errors = JSON.stringify(Object.fromEntries(result.errors));
  console.log(`${id}: exit code ${code} ${Math.round(exitMs)} ms after SIGTERM, ${result.acknowledged.size} acknowledged, errors ${errors}`);
  return { code, exitMs, load: result };
}

async function terminateUnderLoad(id: string, prefix: string): Promise<void> {
  const { code, exitMs, load } = await loadAndTerminate(id, prefix);
  tc.cluster.startMember(id);
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), Math.max(0, ...load.acknowledged.values()));
  for (const m of tc.cluster.members) {
    assert.equal(await missingOn(load.acknowledged, m.grpc), [], `${m.id} stores every acknowledged append`);
  }

  assert.is(code, 0, `${id} exits 0 after SIGTERM`);
  assert.ok(exitMs < exitWithinMs, `${id} exited ${Math.round(exitMs)} ms after SIGTERM, the bound is ${exitWithinMs} ms`);
  assert.ok(load.acknowledged.size > 0, 'appends were acknowledged before the signal');
  const unexpected = [...load.errors].filter(([name]) => !expectedCodes.has(name));
  assert.equal(unexpected, [], 'appends in flight end with UNAVAILABLE, not a hang, a cancellation or an internal error');
}

test('follower under load exits 0 on SIGTERM', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  await terminateUnderLoad(follower.id, 'follower-');
});

test('leader under load exits 0 on SIGTERM', async () => {
  const leader = await waitForLeader(tc.cluster);
  await terminateUnderLoad(leader.id, 'leader-');
});

/** Returns the lines of a member's log from byte `offset` on that contain `text`. */
function linesAfter(logFile: string, offset: number, text: string): string[] {
  const log = fs.readFileSync(logFile).subarray(offset).toString('utf8');
  return log.split('\n').filter((line) => line.includes(text));
}

test('leader hands over its role on SIGTERM', async () => {
  const leader = await waitForLeader(tc.cluster);
  const offsets = new Map(tc.cluster.members.map((m) => [m.id, fs.statSync(m.logFile).size]));
  const child = tc.cluster.processes.get(leader.id)!;
  child.kill('SIGTERM');
  assert.is(await exitOf(child), 0, `${leader.id} exits 0`);

  const handedOver = linesAfter(tc.cluster.member(leader.id).logFile, offsets.get(leader.id)!, '"msg":"handed over leadership"');
  assert.is(handedOver.length, 1, `${leader.id} logs the handover`);
  const newLeaderId = (JSON.parse(handedOver[0]!) as { leaderId: string }).leaderId;
  assert.is.not(newLeaderId, leader.id);
  const newLeader = tc.cluster.member(newLeaderId);
  // Members write their log asynchronously, so the line may come a little later.
  await waitFor(`the handover in ${newLeaderId}'s log`, async () =>
    linesAfter(newLeader.logFile, offsets.get(newLeaderId)!, 'leader handed over its role').length > 0,
  );

  tc.cluster.startMember(leader.id);
  const ids = tc.cluster.members.map((m) => m.id);
  const synced = await waitInSync(tc.cluster, ids);
  assert.ok(synced.every((s) => s.digest === synced[0]!.digest), 'every member has the same digest');
});

test.run();
