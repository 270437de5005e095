// An AppendStream client that sends requests without reading its replies, on a
// real member. The member stops reading the stream once 8,192 replies wait to
// be written, so HTTP/2 flow control stops the client, and every request still
// gets its reply once the client reads again.
import * as http2 from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, startCluster, waitForLeader, type TestCluster } from './harness';

const appendStreamPath = '/replog.v1.Ingest/AppendStream';
/** Empty AppendRequest messages per write: each is a 5-byte gRPC prefix with no body, rejected at once. */
const requestsPerWrite = 1000;
/** Requests after which the client gives up waiting for the member to stop reading. */
const requestsMax = 2_000_000;
/** Time without 'drain' after which the client counts its stream as stopped by the member. */
const stallMs = 2000;

let tc: TestCluster;
let session: http2.ClientHttp2Session;

test.before(async () => {
  tc = await startCluster({ size: 1, haproxy: false });
  const leader = await waitForLeader(tc.cluster);
  session = http2.connect(`http://${tc.cluster.member(leader.id).grpc}`);
  session.on('error', () => undefined);
});

test.after(async () => {
  session?.close();
  await tc.close();
});

/** Resolves true when `stream` emits 'drain' within `ms`, false otherwise. */
function drained(stream: http2.ClientHttp2Stream, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stream.off('drain', onDrain);
      resolve(false);
    }, ms);
    const onDrain = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    stream.once('drain', onDrain);
  });
}

/** Counts the gRPC messages in `chunks` of a response body, carrying a partial prefix over in `state`. */
function countMessages(state: { pending: Buffer; count: number }, chunk: Buffer): void {
  let buffer = state.pending.length > 0 ? Buffer.concat([state.pending, chunk]) : chunk;
  while (buffer.length >= 5) {
    const length = buffer.readUInt32BE(1);
    if (buffer.length < 5 + length) break;
    state.count++;
    buffer = buffer.subarray(5 + length);
  }
  state.pending = buffer;
}

test('a client that reads no replies is stopped, then gets them all', async () => {
  const stream = session.request({ ':method': 'POST', ':path': appendStreamPath, 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => undefined);
  stream.pause();
  const batch = Buffer.alloc(5 * requestsPerWrite);
  let sent = 0;
  let stalled = false;
  while (sent < requestsMax) {
    sent += requestsPerWrite;
    if (stream.write(batch)) continue;
    if (!(await drained(stream, stallMs))) {
      stalled = true;
      break;
    }
  }
  assert.ok(stalled, `the member read all ${sent} requests without its replies being read`);
  assert.ok(sent < 200_000, `the member read ${sent} requests before it stopped`);

  // The member still serves other clients meanwhile.
  const client = connect(tc.cluster.members[0]!.grpc);
  const other = await client.append('beside-a-stalled-stream', 5000);
  client.close();
  assert.ok(other.index > 0, 'an append beside the stalled stream is stored');

  const replies = { pending: Buffer.alloc(0), count: 0 };
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('trailers', resolve));
  stream.on('data', (chunk: Buffer) => countMessages(replies, chunk));
  stream.resume();
  stream.end();
  const status = await trailers;
  assert.is(status['grpc-status'], '0', 'the stream ends with OK');
  assert.is(replies.count, sent, 'every request got a reply');
});

test.run();
