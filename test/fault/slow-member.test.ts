// A follower that keeps stalling (SIGSTOP and SIGCONT over and over) must not
// slow commits down: the leader needs only a majority, which the healthy
// follower completes. Append latency through the leader is measured with and
// without the stalls. Timing on shared CI machines varies, so only a generous
// bound on the median is asserted and the figures are printed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, sleep, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
import { after, missingOn, percentile, recordAppends, startFaultCluster, startWatchdog, type RecordedLoad } from './fault-harness';

const measureMs = 3000;
const concurrency = 4;
/** The stall cycle of the slow follower: stopped this long, then running this long. */
const stoppedMs = 300;
const runningMs = 100;
/** Median append latency allowed with a stalling follower. */
const medianBoundMs = 200;
const fileLimitMs = 60_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startFaultCluster();
  startWatchdog('slow-member.test', fileLimitMs, () => tc.cluster.processes.forEach((p) => p.kill('SIGKILL')));
});

test.after(async () => {
  await tc.close();
});

async function measure(grpc: string, prefix: string): Promise<RecordedLoad> {
  const client = connect(grpc);
  const load = await recordAppends(client, prefix, { concurrency, done: after(measureMs), deadlineMs: 5000 });
  client.close();
  return load;
}

function describe(load: RecordedLoad): string {
  const p = (q: number): number => Math.round(percentile(load.latenciesMs, q));
  return `${load.acknowledged.size} appends, p50 ${p(50)} ms, p99 ${p(99)} ms, max ${p(100)} ms`;
}

test('stalling follower does not slow commits', async () => {
  const leader = await waitForLeader(tc.cluster);
  const leaderGrpc = tc.cluster.member(leader.id).grpc;
  const slow = tc.cluster.members.find((m) => m.id !== leader.id)!.id;
  const baseline = await measure(leaderGrpc, 'baseline-');

  let stalling = true;
  const stalls = (async () => {
    while (stalling) {
      tc.cluster.pauseMember(slow);
      await sleep(stoppedMs);
      tc.cluster.resumeMember(slow);
      await sleep(runningMs);
    }
  })();
  const stalled = await measure(leaderGrpc, 'stalled-');
  stalling = false;
  await stalls;
  console.log(`without stalls: ${describe(baseline)}; with ${slow} stalling: ${describe(stalled)}`);

  assert.is(baseline.errors.size, 0, 'no append fails without stalls');
  assert.is(stalled.errors.size, 0, `no append fails while ${slow} stalls: ${JSON.stringify([...stalled.errors])}`);
  const median = percentile(stalled.latenciesMs, 50);
  assert.ok(median < medianBoundMs, `median latency with a stalling follower is ${Math.round(median)} ms, the bound is ${medianBoundMs} ms`);

  const acknowledged = new Map([...baseline.acknowledged, ...stalled.acknowledged]);
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), Math.max(...acknowledged.values()));
  assert.equal(await missingOn(acknowledged, tc.cluster.member(slow).grpc), [], `${slow} catches up with every append`);
});

test.run();
