// gRPC status codes of the contract, produced by real members: no quorum,
// the client's deadline, overload, and a stream that reports errors per
// request while it stays open, and HTTP methods the endpoints do not take.
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startCluster, waitForLeader, type TestCluster } from './harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ memberArgs: ['--pending-appends-max', '20', '--append-timeout-ms', '1500'] });
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

  const codes = await Promise.all(Array.from({ length: 60 }, (_, i) => codeOf(client.append(`overload-${i}`, 10_000))));
  const exhausted = codes.filter((c) => c === status.RESOURCE_EXHAUSTED).length;
  const unavailable = codes.filter((c) => c === status.UNAVAILABLE).length;
  assert.ok(exhausted >= 40, `appends past --pending-appends-max 20 get RESOURCE_EXHAUSTED (got ${exhausted})`);
  assert.is(exhausted + unavailable, 60, `the rest time out with UNAVAILABLE (codes: ${codes.join(',')})`);
  client.close();
});

test.run();
