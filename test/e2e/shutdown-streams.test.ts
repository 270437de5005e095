// A member stopped with SIGTERM ends its clients' open streams with
// UNAVAILABLE, the code on which a client retries on another member, not
// with CANCELLED, which clients take as their own cancellation.
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IngestError } from '../../src/client';
import { connect, startCluster, waitForLeader, type TestCluster } from './harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ haproxy: false });
});

test.after(async () => {
  await tc.close();
});

test('SIGTERM ends open streams with UNAVAILABLE', async () => {
  const leader = await waitForLeader(tc.cluster);
  const follower = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const client = connect(follower.grpc);

  const stream = client.appendStream({ windowSize: 8 });
  const first = await stream.append(`shutdown-stream-${Date.now()}`);
  assert.ok(first.index > 0, 'the stream works before the stop');

  // A Read that follows waits for new messages when the member stops.
  let readError: unknown = null;
  const reading = (async () => {
    try {
      for await (const message of client.read(1, 0, true)) void message;
    } catch (err) {
      readError = err;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 300));

  const exitCode = await tc.cluster.stopMember(follower.id, 'SIGTERM');
  assert.is(exitCode, 0, 'the member exits cleanly');
  await reading;
  assert.instance(readError, IngestError, `the Read failed with an IngestError, got ${String(readError)}`);
  assert.is((readError as IngestError).code, status.UNAVAILABLE, (readError as IngestError).message);
  assert.match((readError as IngestError).message, /shutting down/);

  const late = await stream.append(`after-stop-${Date.now()}`).then(
    () => null,
    (err: unknown) => err,
  );
  assert.instance(late, IngestError, 'an append on the ended stream fails');
  assert.is((late as IngestError).code, status.UNAVAILABLE, (late as IngestError).message);
  client.close();
});

test.run();
