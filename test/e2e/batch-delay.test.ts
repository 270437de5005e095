// With --batch-delay-ms the leader keeps appends that arrive close together
// waiting for up to that delay, so that one Raft round carries several of them.
// Appends slower than one per delay on average, and an append that finds
// nothing in flight and no other queued, go out at once. The leader's
// replog_proposal_batch_appends histogram counts the rounds and the appends
// they carried.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IngestClient } from '../../src/client';
import { connect, sleep, startCluster, waitForLeader, type TestCluster } from './harness';

/** Longer than a Raft round on a loaded test machine, so the waits show in the counts. */
const batchDelayMs = 200;

let tc: TestCluster;
let client: IngestClient;
let leaderHttp: string;

test.before(async () => {
  tc = await startCluster({ size: 3, memberArgs: ['--batch-delay-ms', String(batchDelayMs)] });
  const leader = await waitForLeader(tc.cluster);
  const member = tc.cluster.member(leader.id);
  leaderHttp = member.http;
  // Appends go to the leader itself, so no follower's forwarding groups them first.
  client = connect(member.grpc);
});

test.after(async () => {
  client?.close();
  await tc.close();
});

/** Returns the rounds and the appends of the leader's batch histogram. */
async function batchCounts(): Promise<{ rounds: number; appends: number }> {
  const text = await (await fetch(`http://${leaderHttp}/metrics`)).text();
  const read = (series: string): number => {
    const match = new RegExp(`^${series} (\\d+)$`, 'm').exec(text);
    assert.ok(match, `/metrics has ${series}`);
    return Number(match![1]);
  };
  return { rounds: read('replog_proposal_batch_appends_count'), appends: read('replog_proposal_batch_appends_sum') };
}

/**
 * Sends `count` appends in pairs `gapMs` apart, then waits for every reply. Each
 * pair arrives together, so the leader always finds more than one queued.
 */
async function sendPairs(prefix: string, count: number, gapMs: number): Promise<void> {
  const replies: Promise<unknown>[] = [];
  for (let i = 0; i < count; i += 2) {
    replies.push(client.append(`${prefix}-${i}`, 5000), client.append(`${prefix}-${i + 1}`, 5000));
    await sleep(gapMs);
  }
  await Promise.all(replies);
}

test('close appends share rounds', async () => {
  // The moving average of the gaps starts at ten delays, so about 20 appends
  // go out without waiting before it falls below one delay. Sending those
  // before the counts are read leaves the bound room for timers that run late.
  await sendPairs('warm-up', 40, 3);
  const before = await batchCounts();
  const count = 60;
  await sendPairs('close', count, 3);
  const after = await batchCounts();
  const rounds = after.rounds - before.rounds;
  assert.is(after.appends - before.appends, count, 'every append was proposed once');
  // Without the wait each pair, 3 ms after the one before, mostly had a round of its own.
  assert.ok(rounds <= count / 3, `${count} appends took ${rounds} rounds`);
});

test('one-at-a-time appends never wait', async () => {
  // The appends of the test before brought the average gap below one delay,
  // so only the rule for a lone append with nothing in flight lets these go at once.
  const before = await batchCounts();
  const started = performance.now();
  for (let i = 0; i < 5; i++) await client.append(`lone-${i}`, 5000);
  const ms = performance.now() - started;
  const after = await batchCounts();
  assert.is(after.rounds - before.rounds, 5, 'each append had a round of its own');
  // Waiting for company would take at least 5 x 200 ms.
  assert.ok(ms < 5 * batchDelayMs, `5 appends one after the other took ${Math.round(ms)} ms`);
});

test.run();
