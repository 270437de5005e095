// Unary Append calls that reach a real member's own handler (src/grpc/unary-append.ts)
// and those it leaves to grpc-js, sent as raw HTTP/2 streams and through
// grpc-js clients: framing errors, deadlines, a cancelled call and a
// compressed one, each with the status a gRPC server gives.
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

/** One length-prefixed gRPC message holding an AppendRequest with `valueset`. */
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
      if (!endStream) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('close', () => resolve({ headers, body: Buffer.concat(chunks), trailers }));
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
  // The append may or may not have been stored; either way a resend succeeds.
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
  // A zero timeout fires on the next event loop turn, before a follower can
  // acknowledge the entry, so the server's deadline is what ends this call.
  const valueset = `late-${Date.now()}`;
  const late = await rawCall(frame(valueset), { 'grpc-timeout': '0m' });
  expectStatus(late, grpc.status.DEADLINE_EXCEEDED, /Deadline exceeded/);
  const resent = await rawCall(frame(valueset), { 'grpc-timeout': '10S' });
  assert.is(resent.trailers['grpc-status'], '0');
});

test.run();
