// AppendStream clients that send requests without reading their replies, on a
// real member and through a real HAProxy. A member keeps at most 65,536
// unread replies of one stream, then fails it with RESOURCE_EXHAUSTED and
// drops its later requests. A client that falls behind less gets every reply,
// also through HAProxy, and its other calls go on meanwhile. That takes the
// member's HTTP/2 receive windows, larger than the protocol's 64 KiB.
import * as http2 from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendRequestFrame } from '../../src/grpc/append-request';
import { connectionWindowBytes, streamWindowBytes } from '../../src/node/run-member';
import { startCluster, waitForLeader, type TestCluster } from './harness';

const streamHeaders = { ':method': 'POST', ':path': '/replog.v1.Ingest/AppendStream', 'content-type': 'application/grpc', te: 'trailers' };
/** Time without 'drain' after which a client counts its stream as stopped. */
const stallMs = 5000;

let tc: TestCluster;
let memberAddress: string;

test.before(async () => {
  tc = await startCluster({ size: 1, haproxy: true });
  const leader = await waitForLeader(tc.cluster);
  memberAddress = tc.cluster.member(leader.id).grpc;
});

test.after(async () => {
  await tc.close();
});

/** Writes `frames` to `stream` without reading; returns false when the stream stopped taking them. */
async function writeAll(stream: http2.ClientHttp2Stream, frames: readonly Buffer[]): Promise<boolean> {
  for (const frame of frames) {
    if (stream.write(frame)) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), stallMs);
      stream.once('drain', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!drained) return false;
  }
  return true;
}

/** Reads the rest of `stream` after ending it; returns the replies' codes (field 3) and the trailers. */
async function readToEnd(stream: http2.ClientHttp2Stream): Promise<{ codes: number[]; trailers: http2.IncomingHttpHeaders }> {
  const codes: number[] = [];
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const message = pending.subarray(5, 5 + pending.readUInt32BE(1));
      // A failed append's reply starts with field 3 (code), a one-byte varint for every status code.
      codes.push(message[0] === 0x18 ? message[1]! : 0);
      pending = pending.subarray(5 + message.length);
    }
  });
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
    stream.once('trailers', resolve);
    // A hung stream gets no trailers: report it instead of waiting for the runner's limit.
    setTimeout(() => resolve({ 'grpc-status': 'none after 20 s' }), 20_000).unref();
  });
  stream.resume();
  stream.end();
  return { codes, trailers: await trailers };
}

/**
 * Sends one unary Append on `session` and resolves with its grpc-status,
 * 'http NNN' when HAProxy replied in place of the member, or 'timeout'.
 */
function unaryStatus(session: http2.ClientHttp2Session, valueset: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const stream = session.request({ ...streamHeaders, ':path': '/replog.v1.Ingest/Append' });
    const timer = setTimeout(() => {
      stream.close();
      resolve('timeout');
    }, timeoutMs);
    let status = 'none';
    stream.on('error', () => undefined);
    stream.on('data', () => undefined);
    // A trailers-only reply carries its status in the response headers.
    stream.on('response', (headers) => {
      if (headers[':status'] !== 200) status = `http ${String(headers[':status'])}`;
      else if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
    });
    stream.on('trailers', (trailers) => {
      status = String(trailers['grpc-status']);
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve(status);
    });
    stream.end(appendRequestFrame(valueset));
  });
}

/**
 * Sends unary Appends through HAProxy until one passes, and resolves with the
 * last status. HAProxy replies 503 itself while its health check marks the
 * member down, as it does when a member on a loaded CPU misses two checks.
 */
async function appendThroughHaproxy(valueset: string, timeoutMs: number): Promise<string> {
  const session = http2.connect(`http://${tc.target}`);
  session.on('error', () => undefined);
  const deadline = Date.now() + timeoutMs;
  let status = 'timeout';
  do {
    status = await unaryStatus(session, valueset, Math.max(1, deadline - Date.now()));
    if (status === 'http 503') await new Promise((resolve) => setTimeout(resolve, 200));
  } while (status === 'http 503' && Date.now() < deadline);
  session.close();
  return status;
}

/** An AppendStream whose replies are not read until readToEnd(). */
interface UnreadStream {
  readonly session: http2.ClientHttp2Session;
  readonly stream: http2.ClientHttp2Stream;
  /** HTTP status of the response headers, or 'none' before they arrive. */
  readonly httpStatus: () => string;
}

/** Opens an AppendStream to `target` whose replies are not read until readToEnd(). */
function openUnreadStream(target: string): UnreadStream {
  const session = http2.connect(`http://${target}`);
  session.on('error', () => undefined);
  const stream = session.request(streamHeaders);
  stream.on('error', () => undefined);
  let httpStatus = 'none';
  stream.once('response', (headers) => {
    httpStatus = String(headers[':status']);
  });
  stream.pause();
  return { session, stream, httpStatus: () => httpStatus };
}

/** 1,000 requests with empty valuesets, which fail at once, so only unread replies can stop a member. */
const emptyBatch = Buffer.concat(Array.from({ length: 1000 }, () => appendRequestFrame('')));

test('member advertises larger receive windows', async () => {
  const session = http2.connect(`http://${memberAddress}`);
  session.on('error', () => undefined);
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  // The member sends its connection's WINDOW_UPDATE before the ping's reply.
  await new Promise<void>((resolve, reject) => {
    session.ping((err) => (err ? reject(err) : resolve()));
  });
  const settings = session.remoteSettings;
  const windowBytes = session.state.remoteWindowSize;
  session.close();
  assert.is(settings.initialWindowSize, streamWindowBytes, 'window of each stream');
  assert.is(windowBytes, connectionWindowBytes, 'window of the connection');
});

test('unread replies fail the stream', async () => {
  const { session, stream } = openUnreadStream(memberAddress);
  const sent = await writeAll(stream, Array.from({ length: 100 }, () => emptyBatch));
  assert.ok(sent, 'the member keeps reading, and drops requests once the stream failed');
  const { codes, trailers } = await readToEnd(stream);
  session.close();
  assert.is(trailers['grpc-status'], '8', `RESOURCE_EXHAUSTED: ${String(trailers['grpc-message'])}`);
  const message = decodeURIComponent(String(trailers['grpc-message']));
  assert.match(message, /^\d+ replies wait for the client to read them, the limit is 65536;/);
  // Replies that are ready together go out in one write, so the count may pass the limit by one write's replies.
  assert.ok(Number(/^\d+/.exec(message)?.[0]) >= 65_536, `${message}: at least the limit`);
  assert.ok(codes.length >= 65_536, `${codes.length} replies before the status: at least the unread ones`);
  assert.ok(codes.length < 100_000, `${codes.length} replies before the status: fewer than the requests`);
  assert.ok(codes.every((code) => code === 3), 'every reply is the INVALID_ARGUMENT of an empty valueset');
});

test('unread replies through HAProxy arrive', async () => {
  // The first test kept the member busy, so HAProxy may mark it down until its next check passes.
  assert.is(await appendThroughHaproxy(`routed-${Date.now()}`, 20_000), '0', 'HAProxy routes an Append to the member');
  const { session, stream, httpStatus } = openUnreadStream(tc.target);
  // 30,000 unread replies: a member that paused the stream for them hung it,
  // because HAProxy then stopped reading the whole client connection.
  const sent = await writeAll(stream, Array.from({ length: 30 }, () => emptyBatch));
  assert.ok(sent, `HAProxy and the member take all 30,000 requests (HTTP status ${httpStatus()})`);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  // Another client's Append passes meanwhile; one on this client's own
  // connection would wait, because the replies this client leaves unread
  // fill its connection's HTTP/2 window.
  assert.is(await appendThroughHaproxy(`behind-haproxy-${Date.now()}`, 10_000), '0', "another client's Append completes meanwhile");
  const { codes, trailers } = await readToEnd(stream);
  session.close();
  assert.is(trailers['grpc-status'], '0', `OK: ${String(trailers['grpc-message'])}`);
  assert.is(codes.length, 30_000, 'every request got a reply');
  assert.ok(codes.every((code) => code === 3), 'every reply is the INVALID_ARGUMENT of an empty valueset');
});

test('two megabytes unread through HAProxy end', async () => {
  assert.is(await appendThroughHaproxy(`routed-again-${Date.now()}`, 20_000), '0', 'HAProxy routes an Append to the member');
  const { session, stream, httpStatus } = openUnreadStream(tc.target);
  // 100,000 requests of about 20 bytes: more than the 65,536 replies a member
  // keeps unread, so the stream fails, and more than 1 MiB of requests.
  const tag = Date.now();
  const batches = Array.from({ length: 100 }, (_, b) =>
    Buffer.concat(Array.from({ length: 1000 }, (_, i) => appendRequestFrame(`jam-${tag}-${b * 1000 + i}`))),
  );
  const sent = await writeAll(stream, batches);
  assert.ok(sent, `HAProxy and the member take all 100,000 requests (HTTP status ${httpStatus()})`);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const { codes, trailers } = await readToEnd(stream);
  session.close();
  assert.is(trailers['grpc-status'], '8', `RESOURCE_EXHAUSTED: ${String(trailers['grpc-message'])}`);
  assert.ok(codes.length >= 65_536, `${codes.length} replies before the status: at least the unread ones`);
});

test.run();
