// Unary Append calls sent to a real member as raw HTTP/2 streams and through
// grpc-js clients. Most reach the member's own handler (src/grpc/unary-append.ts),
// and a compressed one goes to grpc-js. Framing errors, deadlines and a
// cancelled call each get the status a gRPC server gives.
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { grpcMessageBytesMax } from '../../src/grpc/peer-link';
import { appendPath } from '../../src/grpc/unary-append';
import { startCluster, waitForLeader, type TestCluster } from './harness';

interface AppendReply {
  readonly index: number;
  readonly duplicate: boolean;
}

/** What a raw call got back: the response headers, the body and the trailers (or the trailers-only headers). */
interface RawOutcome {
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: http2.IncomingHttpHeaders;
}

const ingest = (loadReplogPackage()['Ingest'] as grpc.ServiceClientConstructor).service;
const decodeReply = ingest['Append']!.responseDeserialize as (bytes: Buffer) => AppendReply;

/** Time after which rawCall() cancels a call that has not ended. */
const rawCallTimeoutMs = 10_000;

let tc: TestCluster;
let leaderAddress: string;
let session: http2.ClientHttp2Session;

test.before(async () => {
  tc = await startCluster({ haproxy: false });
  const leader = await waitForLeader(tc.cluster);
  leaderAddress = tc.cluster.member(leader.id).grpc;
  session = http2.connect(`http://${leaderAddress}`);
});

test.after(async () => {
  session.close();
  await tc.close();
});

/** Builds one length-prefixed gRPC message that contains an AppendRequest with `valueset`. */
function frame(valueset: string, compressedFlag = 0): Buffer {
  const text = Buffer.from(valueset);
  const message = Buffer.concat([Buffer.from([0x0a, text.length]), text]);
  const prefix = Buffer.alloc(5);
  prefix[0] = compressedFlag;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** Sends `body` as one Append call on a raw HTTP/2 stream and collects what comes back. */
function rawCall(body: Buffer, extraHeaders: http2.OutgoingHttpHeaders = {}, endStream = true): Promise<RawOutcome> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': appendPath,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...extraHeaders,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      headers = h;
      if (h['grpc-status'] === undefined) return;
      // Trailers only: the call is over even if this side has not ended its request.
      trailers = h;
      // The close waits a turn: closing inside a 'response' listener once aborted Node 20.20.2 on an http2 assertion.
      if (!endStream) setImmediate(() => stream.close(http2.constants.NGHTTP2_CANCEL));
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A member that never replies fails the test with the status missing, instead of hanging it.
    const giveUp = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), rawCallTimeoutMs);
    stream.on('close', () => {
      clearTimeout(giveUp);
      resolve({ headers, body: Buffer.concat(chunks), trailers });
    });
    stream.on('error', reject);
    if (endStream) stream.end(body);
    else stream.write(body);
  });
}

function expectStatus(outcome: RawOutcome, code: grpc.status, detail: RegExp): void {
  assert.is(outcome.trailers['grpc-status'], String(code), String(outcome.trailers['grpc-message']));
  assert.match(decodeURIComponent(String(outcome.trailers['grpc-message'])), detail);
}

test('raw append gets a gRPC reply', async () => {
  const valueset = `raw-ok-${Date.now()}`;
  const first = await rawCall(frame(valueset));
  assert.is(first.headers[':status'], 200);
  assert.is(first.headers['content-type'], 'application/grpc+proto');
  assert.is(first.trailers['grpc-status'], '0');
  assert.is(first.body.readUInt32BE(1), first.body.length - 5, 'one length-prefixed message');
  const reply = decodeReply(first.body.subarray(5));
  assert.ok(reply.index > 0, `index ${reply.index}`);
  assert.is(reply.duplicate, false);
  const again = decodeReply((await rawCall(frame(valueset))).body.subarray(5));
  assert.equal({ index: Number(again.index), duplicate: again.duplicate }, { index: Number(reply.index), duplicate: true });
});

test('framing errors get their status', async () => {
  expectStatus(await rawCall(Buffer.alloc(0)), grpc.status.UNIMPLEMENTED, /no request message/);
  const two = Buffer.concat([frame(`two-a-${Date.now()}`), frame(`two-b-${Date.now()}`)]);
  expectStatus(await rawCall(two), grpc.status.UNIMPLEMENTED, /second request message/);
  expectStatus(await rawCall(Buffer.from([0, 0, 0])), grpc.status.INTERNAL, /inside the 5-byte message prefix/);
  const whole = frame(`cut-${Date.now()}`);
  expectStatus(await rawCall(whole.subarray(0, whole.length - 2)), grpc.status.INTERNAL, /declares \d+ bytes, but the call ended after/);
  expectStatus(await rawCall(frame(`flag-${Date.now()}`, 1)), grpc.status.INTERNAL, /marked compressed/);
  expectStatus(await rawCall(frame(`t-${Date.now()}`), { 'grpc-timeout': '5 seconds' }), grpc.status.INTERNAL, /invalid grpc-timeout header "5 seconds"/);
});

test('oversized prefix is rejected early', async () => {
  // Only the prefix is sent and the stream stays open: the reply must not wait for the body.
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(grpcMessageBytesMax + 1, 1);
  const outcome = await rawCall(prefix, {}, false);
  expectStatus(outcome, grpc.status.RESOURCE_EXHAUSTED, new RegExp(`larger than max \\(${grpcMessageBytesMax + 1} vs\\. ${grpcMessageBytesMax}\\)`));
});

test('body past one message fails early', async () => {
  // The request goes on past its one message and never ends: the reply must
  // come at the first extra byte, before the member buffers the rest.
  const body = Buffer.concat([frame(`past-${Date.now()}`), Buffer.alloc(4 * 1024 * 1024)]);
  expectStatus(await rawCall(body, {}, false), grpc.status.UNIMPLEMENTED, /second request message/);
});

test('bad timeout with large body', async () => {
  // 300 KB is more than HTTP/2's first flow-control window of 64 KiB: the call still ends, with the status.
  const message = Buffer.concat([Buffer.from([0x0a, 0x80, 0x80, 0x12]), Buffer.alloc(300_000, 'b')]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  const outcome = await rawCall(Buffer.concat([prefix, message]), { 'grpc-timeout': 'soon' });
  expectStatus(outcome, grpc.status.INTERNAL, /invalid grpc-timeout header "soon"/);
});

test('deadline past the timer range holds', async () => {
  // Over 2^31 - 1 ms a Node.js timer fires after 1 ms, which would fail a call that has a year to run.
  for (const timeout of ['8760H', '99999999H']) {
    const outcome = await rawCall(frame(`year-${timeout}-${Date.now()}`), { 'grpc-timeout': timeout });
    assert.is(outcome.trailers['grpc-status'], '0', `grpc-timeout ${timeout}: ${String(outcome.trailers['grpc-message'])}`);
  }
});

test('invalid valueset keeps its message', async () => {
  // The raw reply carries the member's own detail, and so does the one a grpc-js client decodes.
  const outcome = await rawCall(frame(''));
  expectStatus(outcome, grpc.status.INVALID_ARGUMENT, /invalid valueset: it is empty/);
  const client = new grpc.Client(leaderAddress, grpc.credentials.createInsecure());
  const err = await new Promise<grpc.ServiceError | null>((resolve) => {
    const bytes = Buffer.concat([Buffer.from([0x0a, 3]), Buffer.from([0x61, 0xff, 0x62])]);
    client.makeUnaryRequest(appendPath, (b: Buffer) => b, decodeReply, bytes, { deadline: Date.now() + 5000 }, (e) => resolve(e));
  });
  client.close();
  assert.is(err?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(err?.details ?? '', /not valid UTF-8/);
});

test('cancelled call leaves member serving', async () => {
  const valueset = `cancel-${Date.now()}`;
  const stream = session.request({ ':method': 'POST', ':path': appendPath, 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => undefined);
  stream.end(frame(valueset));
  stream.close(http2.constants.NGHTTP2_CANCEL);
  // The append may or may not have been stored. Either way a resend succeeds.
  const outcome = await rawCall(frame(valueset));
  assert.is(outcome.trailers['grpc-status'], '0');
  assert.ok(decodeReply(outcome.body.subarray(5)).index > 0);
});

test('compressed call goes to grpc-js', async () => {
  const valueset = `gzip-${Date.now()}`;
  const options = { 'grpc.default_compression_algorithm': 2 /* gzip */ };
  const client = new grpc.Client(leaderAddress, grpc.credentials.createInsecure(), options);
  const serialize = ingest['Append']!.requestSerialize as (request: object) => Buffer;
  const reply = await new Promise<AppendReply>((resolve, reject) => {
    client.makeUnaryRequest(appendPath, serialize, decodeReply, { valueset }, { deadline: Date.now() + 5000 }, (e, r) =>
      e ? reject(e) : resolve(r!),
    );
  });
  client.close();
  assert.ok(reply.index > 0);
  // The same valueset through the raw path is a duplicate at the same index.
  const raw = decodeReply((await rawCall(frame(valueset))).body.subarray(5));
  assert.equal({ index: Number(raw.index), duplicate: raw.duplicate }, { index: Number(reply.index), duplicate: true });
});

test('server deadline ends the call', async () => {
  // With the other members paused the entry cannot commit. The 100 ms
  // deadline comes before the election timeout of 300 ms after which the
  // member would give up leading, so the server's deadline ends this call.
  const others = tc.cluster.members.filter((m) => m.grpc !== leaderAddress).map((m) => m.id);
  const valueset = `late-${Date.now()}`;
  for (const id of others) tc.cluster.pauseMember(id);
  let late: RawOutcome;
  try {
    late = await rawCall(frame(valueset), { 'grpc-timeout': '100m' });
  } finally {
    for (const id of others) tc.cluster.resumeMember(id);
  }
  expectStatus(late, grpc.status.DEADLINE_EXCEEDED, /Deadline exceeded/);
  const resent = await rawCall(frame(valueset), { 'grpc-timeout': '20S' });
  assert.is(resent.trailers['grpc-status'], '0', String(resent.trailers['grpc-message']));
});

test.run();
