// gRPC status codes of the contract, produced by real members: no quorum,
// the client's deadline, overload, and a stream that reports errors per
// request while it stays open, and HTTP methods the endpoints do not take.
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startCluster, waitFor, waitForLeader, type TestCluster } from './harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({
    memberArgs: ['--pending-appends-max', '20', '--pending-bytes-max', '100000', '--append-timeout-ms', '1500'],
  });
});

test.after(async () => {
  await tc.close();
});

async function codeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return status.OK;
  } catch (err) {
    return (err as { code: number }).code;
  }
}

test('AppendStream reports a bad request and stays open', async () => {
  const client = connect(tc.cluster.members[0]!.grpc);
  const stream = client.appendStream({ windowSize: 8 });
  const replies = await Promise.allSettled([stream.append('stream-ok-1'), stream.append(''), stream.append('stream-ok-2')]);
  await stream.close();
  client.close();
  assert.is(replies[0]!.status, 'fulfilled', 'the first append is stored');
  assert.is(replies[1]!.status, 'rejected', 'the empty valueset is rejected');
  assert.is((replies[1] as PromiseRejectedResult).reason.code, status.INVALID_ARGUMENT);
  assert.is(replies[2]!.status, 'fulfilled', 'the stream stays open after a bad request');
});

test('HTTP endpoints answer other methods with 405', async () => {
  const member = tc.cluster.members[0]!;
  for (const path of ['/status', '/healthz', '/readyz', '/metrics']) {
    const response = await fetch(`http://${member.http}${path}`, { method: 'POST' });
    assert.is(response.status, 405, `POST ${path}`);
    assert.is(response.headers.get('allow'), 'GET, HEAD', `Allow of ${path}`);
  }
  const head = await fetch(`http://${member.http}/healthz`, { method: 'HEAD' });
  assert.is(head.status, 200, 'HEAD is served');
});

test('no quorum gives UNAVAILABLE or DEADLINE_EXCEEDED, overload RESOURCE_EXHAUSTED', async () => {
  const leader = await waitForLeader(tc.cluster);
  const survivor = tc.cluster.member(leader.id);
  for (const m of tc.cluster.members) if (m.id !== leader.id) await tc.cluster.stopMember(m.id, 'SIGKILL');
  const client = connect(survivor.grpc);

  const deadlineCode = await codeOf(client.append('no-quorum-short-deadline', 300));
  assert.is(deadlineCode, status.DEADLINE_EXCEEDED, 'the client deadline passes first');

  // 60,000 bytes wait for a quorum, so 60,000 more pass --pending-bytes-max 100000.
  const large = client.append(`large-1-${'x'.repeat(60_000)}`, 10_000);
  const largeCode = codeOf(large);
  await waitFor('the large append to be pending', async () => {
    const metrics = await (await fetch(`http://${survivor.http}/metrics`)).text();
    return Number(/^replog_pending_bytes (\d+)$/m.exec(metrics)?.[1] ?? 0) >= 60_000;
  });
  const rejected = await client.append(`large-2-${'x'.repeat(60_000)}`, 10_000).then(
    () => null,
    (err: { code: number; message: string }) => err,
  );
  assert.is(rejected?.code, status.RESOURCE_EXHAUSTED, 'an append past the byte bound is rejected');
  assert.match(rejected?.message ?? '', /bytes of valuesets in progress and 60008 more in this append, the limit is 100000;/);
  assert.is(await largeCode, status.UNAVAILABLE, 'the append within the bound times out without a quorum');

  const codes = await Promise.all(Array.from({ length: 60 }, (_, i) => codeOf(client.append(`overload-${i}`, 10_000))));
  const exhausted = codes.filter((c) => c === status.RESOURCE_EXHAUSTED).length;
  const unavailable = codes.filter((c) => c === status.UNAVAILABLE).length;
  assert.ok(exhausted >= 40, `appends past --pending-appends-max 20 get RESOURCE_EXHAUSTED (got ${exhausted})`);
  assert.is(exhausted + unavailable, 60, `the rest time out with UNAVAILABLE (codes: ${codes.join(',')})`);
  client.close();
});

test.run();
