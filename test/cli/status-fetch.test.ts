// GET /status against servers that are not replog members: each failure
// message must name the cause. The servers are real, on 127.0.0.1, ports 47000-47999.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchMemberStatus, parseHttpAddress, parseHttpAddressList } from '../../src/cli/status-fetch';
import { parseStatusFlags, run as runStatus } from '../../src/cli/status';
import { InvalidAddressError } from '../../src/client/target';

const portFirst = 47_000;
const portCount = 1_000;

/** Listens on 127.0.0.1 at a free port from 47000 to 47999; returns `HOST:PORT`. */
async function listenInRange(server: net.Server): Promise<string> {
  const start = Math.floor(Math.random() * portCount);
  for (let k = 0; k < portCount; k += 1) {
    const port = portFirst + ((start + k) % portCount);
    const listening = await new Promise<boolean>((resolve) => {
      const onError = (): void => resolve(false);
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        resolve(true);
      });
    });
    if (listening) return `127.0.0.1:${port}`;
  }
  throw new Error(`no free port from ${portFirst} to ${portFirst + portCount - 1}`);
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Servers of each kind that a user may point --http at by mistake. */
interface Servers {
  /** HTTP/2 only, like a member's gRPC port. */
  readonly grpcLike: string;
  /** Accepts and closes every connection at once. */
  readonly closing: string;
  /** HTTP/1.1 that returns 404 for every path. */
  readonly notFound: string;
  /** HTTP/1.1 that returns 200 with a body that is not JSON. */
  readonly notJson: string;
  /** HTTP/1.1 that returns 200 with JSON that is not a member status. */
  readonly otherJson: string;
  /** A port that was free a moment ago, so a connection is refused. */
  readonly refused: string;
}

const servers: net.Server[] = [];
let addresses: Servers;

test.before(async () => {
  const start = async (server: net.Server): Promise<string> => {
    servers.push(server);
    return listenInRange(server);
  };
  const grpcLike = await start(http2.createServer());
  const closing = await start(net.createServer((socket) => socket.destroy()));
  const notFound = await start(http.createServer((_request, response) => response.writeHead(404).end()));
  const notJson = await start(http.createServer((_request, response) => response.end('<html>hello</html>')));
  const otherJson = await start(http.createServer((_request, response) => response.end('{"id":"n1"}')));
  const spare = net.createServer();
  const refused = await listenInRange(spare);
  await close(spare);
  addresses = { grpcLike, closing, notFound, notJson, otherJson, refused };
});

test.after(async () => {
  await Promise.all(servers.map(close));
});

async function fetchError(address: string): Promise<string> {
  const result = await fetchMemberStatus(address, 2_000);
  if ('status' in result) throw new Error(`expected an error from ${address}, got a status`);
  return result.error;
}

test('fetch from gRPC port names HTTP/1.1', async () => {
  const address = addresses.grpcLike;
  assert.is(
    await fetchError(address),
    `GET http://${address}/status failed: the reply is not HTTP/1.1 (HPE_INVALID_CONSTANT); ` +
      `is ${address} a member's --http address?`,
  );
});

test('fetch from closing server explains close', async () => {
  const address = addresses.closing;
  assert.is(
    await fetchError(address),
    `GET http://${address}/status failed: the server closed the connection without an HTTP reply ` +
      `(UND_ERR_SOCKET); is ${address} a member's --http address?`,
  );
});

test('fetch from closed port says refused', async () => {
  const address = addresses.refused;
  assert.is(
    await fetchError(address),
    `GET http://${address}/status failed: connection refused (ECONNREFUSED); is a member running with --http ${address}?`,
  );
});

test('fetch with HTTP 404 names status', async () => {
  const address = addresses.notFound;
  assert.is(await fetchError(address), `GET http://${address}/status returned HTTP 404; is ${address} a member's --http address?`);
});

test('fetch of non-JSON body says so', async () => {
  const address = addresses.notJson;
  assert.is(
    await fetchError(address),
    `GET http://${address}/status returned a body that is not JSON; is ${address} a member's --http address?`,
  );
});

test('fetch of other JSON names field', async () => {
  const address = addresses.otherJson;
  assert.is(
    await fetchError(address),
    `GET http://${address}/status returned an invalid status: status field "role" is missing or not a string; ` +
      `is ${address} a member's --http address?`,
  );
});

test('status prints each failure and exits 1', async () => {
  let stdout = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      stdout += chunk.toString();
      done();
    },
  });
  const stdin = new PassThrough();
  stdin.end();
  const argv = ['--http', `http://${addresses.grpcLike}/status,${addresses.refused}`];
  const exitCode = await runStatus(argv, { stdin, stdout: sink, stderr: sink });
  assert.is(exitCode, 1);
  assert.ok(stdout.includes(`${addresses.grpcLike}: GET http://${addresses.grpcLike}/status failed: the reply is not HTTP/1.1`), stdout);
  assert.ok(stdout.includes(`${addresses.refused}: GET http://${addresses.refused}/status failed: connection refused`), stdout);
});

/** Each case: --http value as typed, and the `HOST:PORT` it names. */
const acceptedAddresses: readonly [string, string][] = [
  ['127.0.0.1:7010', '127.0.0.1:7010'],
  [' 127.0.0.1:7010 ', '127.0.0.1:7010'],
  ['http://127.0.0.1:7010', '127.0.0.1:7010'],
  ['http://127.0.0.1:7010/', '127.0.0.1:7010'],
  ['http://127.0.0.1:7010/status', '127.0.0.1:7010'],
  ['http://127.0.0.1:7010/status/', '127.0.0.1:7010'],
  ['HTTP://localhost:7010/status', 'localhost:7010'],
  ['http://[::1]:7010/status', '[::1]:7010'],
];

for (const [text, expected] of acceptedAddresses) {
  test(`http address "${text}" is accepted`, () => {
    assert.is(parseHttpAddress(text), expected);
  });
}

/** Each case: --http value and text the error must contain. */
const rejectedAddresses: readonly [string, string][] = [
  ['https://127.0.0.1:7010', 'members serve plain HTTP, not HTTPS'],
  ['http://127.0.0.1:7010/metrics', 'expected HOST:PORT or http://HOST:PORT[/status]'],
  ['http://127.0.0.1', 'expected HOST:PORT or http://HOST:PORT[/status]'],
  ['ftp://127.0.0.1:7010', 'expected HOST:PORT or http://HOST:PORT[/status]'],
  ['127.0.0.1:0', 'with a port from 1 to 65535'],
];

for (const [text, expected] of rejectedAddresses) {
  test(`http address "${text}" is rejected`, () => {
    try {
      parseHttpAddress(text);
      assert.unreachable('parseHttpAddress returned');
    } catch (error) {
      assert.instance(error, InvalidAddressError);
      assert.is((error as InvalidAddressError).address, text);
      assert.ok((error as InvalidAddressError).expected.includes(expected), (error as Error).message);
    }
  });
}

test('http address list mixes forms', () => {
  assert.equal(parseHttpAddressList('http://127.0.0.1:7010/status,127.0.0.1:7011, http://127.0.0.1:7012/'), [
    '127.0.0.1:7010',
    '127.0.0.1:7011',
    '127.0.0.1:7012',
  ]);
});

test('status --http takes cluster output', () => {
  const flags = parseStatusFlags(['--http', 'http://127.0.0.1:7010/status,http://127.0.0.1:7011/status']);
  assert.equal(flags?.addresses, ['127.0.0.1:7010', '127.0.0.1:7011']);
});

test.run();
