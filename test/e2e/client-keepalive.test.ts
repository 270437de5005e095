// A member's gRPC server must not ping its clients every few seconds. grpc-js
// runs a ping's timeout before it reads the reply that arrived while the
// member was paused, so with a short timeout a member paused twice in a row
// closed every client connection, and appends in flight failed with INTERNAL.
import http2 from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCluster, type TestCluster } from './harness';

/** Longer than the 5 s interval at which the servers pinged their clients before. */
const watchMs = 7000;

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ size: 1, haproxy: false });
});

test.after(async () => {
  await tc.close();
});

test('member sends clients no early pings', async () => {
  const session = http2.connect(`http://${tc.cluster.members[0]!.grpc}`);
  let pingCount = 0;
  session.on('ping', () => {
    pingCount += 1;
  });
  try {
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    await new Promise((resolve) => setTimeout(resolve, watchMs));
    assert.is(pingCount, 0, `the member pinged this client ${pingCount} times in ${watchMs} ms`);
  } finally {
    session.close();
  }
});

test.run();
