// How send and bench explain a --target they cannot reach, probed with real
// sockets on 127.0.0.1: a closed port, and an HTTP server.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectFailureMessage, refusedTargetMessage } from '../../src/cli/connect-failure';
import { freePorts } from '../../src/cluster/local-cluster';

test('closed port is reported at once', async () => {
  const [port] = await freePorts(1);
  const message = await refusedTargetMessage(`127.0.0.1:${port}`);
  assert.match(message ?? '', new RegExp(`nothing listens on 127\\.0\\.0\\.1:${port} \\(connection refused\\)`));
});

test('HTTP port is named as not gRPC', async () => {
  const server = http.createServer((_request, response) => response.end('not gRPC'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  assert.is(await refusedTargetMessage(target), null, 'something listens there');
  const message = await connectFailureMessage(target, 1500);
  await new Promise((resolve) => server.close(resolve));
  assert.match(message, /accepted a connection but did not answer as a gRPC server within 1500 ms/);
  assert.match(message, /not paused or at its connection limit/, 'a full HAProxy looks the same, so the message names it');
});

test('scheme targets are not probed', async () => {
  assert.is(await refusedTargetMessage('ipv4:127.0.0.1:1'), null);
});

test.run();
