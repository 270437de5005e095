// AppendStream calls sent to a real member as raw HTTP/2 streams, with the
// gRPC frames written by hand. Plain calls reach the member's own handler
// (src/grpc/append-stream.ts), and a compressed one goes to grpc-js. Replies
// come in request order, framing errors and deadlines end the call with the
// status a gRPC server gives, and a member that shuts down replies to the
// requests it read before it ends the call with UNAVAILABLE.
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { appendRequestFrame } from '../../src/grpc/append-request';
import { appendStreamPath } from '../../src/grpc/append-stream';
import { prefixBytes } from '../../src/grpc/grpc-messages';
import { grpcMessageBytesMax } from '../../src/grpc/peer-link';
import { grpcFrame } from '../../src/grpc/protobuf-fields';
import { readAll, sleep, startCluster, waitFor, waitForLeader, type TestCluster } from './harness';

interface StreamReply {
  readonly index: number;
  readonly duplicate: boolean;
  readonly code: number;
  readonly error: string;
}

/** What a raw call got back: its replies, in the order received, and its status. */
interface StreamOutcome {
  readonly replies: StreamReply[];
  /** Bytes after the last whole message, which a reply cut short leaves. */
  readonly leftover: number;
  readonly status: string;
  readonly message: string;
}

/** One raw AppendStream call: the HTTP/2 stream, the replies so far, and the outcome once the call is over. */
interface RawStream {
  readonly stream: http2.ClientHttp2Stream;
  readonly replies: StreamReply[];
  readonly done: Promise<StreamOutcome>;
}

const ingest = (loadReplogPackage()['Ingest'] as grpc.ServiceClientConstructor).service;
const decodeReply = ingest['AppendStream']!.responseDeserialize as (bytes: Buffer) => StreamReply;

/** Time after which a raw call that has not ended is cancelled, and fails its test with the status missing. */
const rawCallTimeoutMs = 15_000;

let tc: TestCluster;
/** The leader, which every test but the last calls directly. */
let memberId: string;
let memberAddress: string;
let session: http2.ClientHttp2Session;

test.before(async () => {
  tc = await startCluster({ size: 3 });
  const leader = await waitForLeader(tc.cluster);
  memberId = leader.id;
  memberAddress = tc.cluster.member(memberId).grpc;
  session = http2.connect(`http://${memberAddress}`);
  // The member's shutdown in the last test ends the session with GOAWAY.
  session.on('error', () => undefined);
});

test.after(async () => {
  session.close();
  await tc.close();
});

/** Opens an AppendStream call on `on` and collects its replies and status as they arrive. */
function openStream(extraHeaders: http2.OutgoingHttpHeaders = {}, on: http2.ClientHttp2Session = session): RawStream {
  const stream = on.request({
    ':method': 'POST',
    ':path': appendStreamPath,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...extraHeaders,
  });
  const replies: StreamReply[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let trailers: http2.IncomingHttpHeaders = {};
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= prefixBytes && pending.length >= prefixBytes + pending.readUInt32BE(1)) {
      const end = prefixBytes + pending.readUInt32BE(1);
      const reply = decodeReply(pending.subarray(prefixBytes, end));
      replies.push({ index: Number(reply.index), duplicate: reply.duplicate, code: reply.code, error: reply.error });
      pending = pending.subarray(end);
    }
  });
  // The status ends the call even if this side has not ended its request. The
  // close waits a turn: closing inside a 'response' listener once aborted Node
  // 20.20.2 on an http2 assertion.
  const closeAfterStatus = (): void => {
    setImmediate(() => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
  };
  stream.on('response', (headers) => {
    // A trailers-only response carries the status in its headers.
    if (headers['grpc-status'] === undefined) return;
    trailers = headers;
    closeAfterStatus();
  });
  stream.on('trailers', (t) => {
    trailers = t;
    closeAfterStatus();
  });
  let streamError = '';
  // A reset or a lost connection leaves the status missing, which the tests report.
  stream.on('error', (err: Error) => (streamError = err.message));
  const done = new Promise<StreamOutcome>((resolve) => {
    const giveUp = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), rawCallTimeoutMs);
    stream.on('close', () => {
      clearTimeout(giveUp);
      resolve({
        replies,
        leftover: pending.length,
        status: String(trailers['grpc-status'] ?? `none (${streamError || 'no error'})`),
        message: decodeURIComponent(String(trailers['grpc-message'] ?? '')),
      });
    });
  });
  return { stream, replies, done };
}

/** Sends `body` on a new AppendStream call, ends the request, and resolves once the call is over. */
function sendAll(body: Buffer, extraHeaders: http2.OutgoingHttpHeaders = {}): Promise<StreamOutcome> {
  const call = openStream(extraHeaders);
  call.stream.end(body);
  return call.done;
}

/** Resolves with the valueset stored at each index, read back from the member. */
async function storedValuesets(): Promise<Map<number, string>> {
  const messages = await readAll(memberAddress);
  return new Map(messages.map((m) => [Number(m.index), m.valueset]));
}

/** Builds a gRPC frame whose AppendRequest carries `bytes` as the valueset field, UTF-8 or not. */
function rawValuesetFrame(bytes: Buffer): Buffer {
  return grpcFrame(Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]));
}

test('replies follow request order', async () => {
  const tag = Date.now();
  const valuesets = Array.from({ length: 40 }, (_, i) => `order-${tag}-${i}`);
  // Invalid requests settle at once and appends later, so a handler that
  // wrote replies as they settle would move these two ahead of the appends.
  const frames = valuesets.map((v) => appendRequestFrame(v));
  frames.splice(10, 0, appendRequestFrame(''));
  frames.splice(25, 0, rawValuesetFrame(Buffer.from([0x61, 0xff, 0x62])));
  frames.push(appendRequestFrame(valuesets[3]!));
  const outcome = await sendAll(Buffer.concat(frames));

  assert.is(outcome.status, '0', outcome.message);
  assert.is(outcome.replies.length, frames.length);
  assert.is(outcome.leftover, 0);
  const empty = outcome.replies[10]!;
  assert.is(empty.code, grpc.status.INVALID_ARGUMENT);
  assert.match(empty.error, /invalid valueset: it is empty/);
  assert.is(empty.index, 0);
  const notUtf8 = outcome.replies[25]!;
  assert.is(notUtf8.code, grpc.status.INVALID_ARGUMENT);
  assert.match(notUtf8.error, /not valid UTF-8/);
  assert.is(notUtf8.index, 0);

  const appended = outcome.replies.filter((_, i) => i !== 10 && i !== 25).slice(0, valuesets.length);
  const stored = await storedValuesets();
  appended.forEach((reply, i) => {
    assert.is(reply.code, 0, `reply ${i}: ${reply.error}`);
    assert.is(reply.duplicate, false, `reply ${i}`);
    assert.is(stored.get(reply.index), valuesets[i], `reply ${i} names index ${reply.index}`);
  });
  const repeated = outcome.replies[frames.length - 1]!;
  assert.is(repeated.duplicate, true);
  assert.is(repeated.index, appended[3]!.index);
});

test('tiny chunks carry whole requests', async () => {
  const tag = Date.now();
  const valuesets = [`tiny-${tag}-a`, `tiny-${tag}-b`, `tiny-${tag}-${'c'.repeat(200)}`];
  const body = Buffer.concat(valuesets.map((v) => appendRequestFrame(v)));
  const call = openStream();
  // One byte per write, a timer apart, so that each reaches the member in a DATA frame of its own.
  for (let at = 0; at < body.length; at += 1) {
    call.stream.write(body.subarray(at, at + 1));
    await sleep(1);
  }
  call.stream.end();
  const outcome = await call.done;

  assert.is(outcome.status, '0', outcome.message);
  assert.is(outcome.replies.length, valuesets.length);
  const stored = await storedValuesets();
  outcome.replies.forEach((reply, i) => {
    assert.is(reply.code, 0, `reply ${i}: ${reply.error}`);
    assert.is(stored.get(reply.index), valuesets[i], `reply ${i} names index ${reply.index}`);
  });
});

test('one chunk carries many requests', async () => {
  const tag = Date.now();
  const valuesets = Array.from({ length: 1000 }, (_, i) => `packed-${tag}-${i}`);
  const outcome = await sendAll(Buffer.concat(valuesets.map((v) => appendRequestFrame(v))));

  assert.is(outcome.status, '0', outcome.message);
  assert.is(outcome.replies.length, valuesets.length);
  const stored = await storedValuesets();
  const misplaced = outcome.replies.findIndex((reply, i) => reply.code !== 0 || stored.get(reply.index) !== valuesets[i]);
  assert.is(misplaced, -1, `first reply that does not name its request's index: ${misplaced}`);
});

test('empty stream ends with OK', async () => {
  const outcome = await sendAll(Buffer.alloc(0));
  assert.is(outcome.status, '0', outcome.message);
  assert.is(outcome.replies.length, 0);
  assert.is(outcome.leftover, 0);
});

test('oversized message is rejected early', async () => {
  // Only the prefix is sent and the request stays open, so the status must not wait for the body.
  const prefix = Buffer.alloc(prefixBytes);
  prefix.writeUInt32BE(grpcMessageBytesMax + 1, 1);
  const call = openStream();
  call.stream.write(prefix);
  const outcome = await call.done;
  assert.is(outcome.status, String(grpc.status.RESOURCE_EXHAUSTED), outcome.message);
  assert.is(outcome.message, `Received message larger than max (${grpcMessageBytesMax + 1} vs. ${grpcMessageBytesMax})`);
});

test('message at the limit is read', async () => {
  // The message is exactly 1 MiB, made of a tag, a 3-byte length and the valueset.
  const valuesetBytes = grpcMessageBytesMax - 4;
  const valueset = `limit-${Date.now()}-`.padEnd(valuesetBytes, 'x');
  const outcome = await sendAll(appendRequestFrame(valueset));
  assert.is(outcome.status, '0', outcome.message);
  assert.is(outcome.replies.length, 1);
  // The reader takes the message, and the member rejects a valueset over 64 KiB in its reply.
  assert.is(outcome.replies[0]!.code, grpc.status.INVALID_ARGUMENT);
  assert.match(outcome.replies[0]!.error, new RegExp(`invalid valueset: ${valuesetBytes} UTF-8 bytes is over the limit`));
});

test('compressed flag without encoding fails', async () => {
  const frame = appendRequestFrame(`flag-${Date.now()}`);
  frame[0] = 1;
  const outcome = await sendAll(frame);
  assert.is(outcome.status, String(grpc.status.INTERNAL), outcome.message);
  assert.match(outcome.message, /marked compressed, but the call declares no compression/);
  assert.is(outcome.replies.length, 0);
});

test('call ending inside message fails', async () => {
  const whole = appendRequestFrame(`cut-${Date.now()}`);
  const insideBody = await sendAll(whole.subarray(0, whole.length - 2));
  assert.is(insideBody.status, String(grpc.status.INTERNAL), insideBody.message);
  assert.match(insideBody.message, new RegExp(`declares ${whole.length - prefixBytes} bytes, but the call ended after ${whole.length - prefixBytes - 2}`));
  const insidePrefix = await sendAll(Buffer.from([0, 0, 0]));
  assert.is(insidePrefix.status, String(grpc.status.INTERNAL), insidePrefix.message);
  assert.match(insidePrefix.message, /ended inside the 5-byte message prefix/);
});

test('framing error after replies fails', async () => {
  // The reply to the first request opens the response, so the status comes in trailers after it.
  const call = openStream();
  call.stream.write(appendRequestFrame(`before-flag-${Date.now()}`));
  await waitFor('the first reply', async () => call.replies.length > 0, 5000);
  const flagged = appendRequestFrame(`flagged-${Date.now()}`);
  flagged[0] = 1;
  call.stream.write(flagged);
  const outcome = await call.done;
  assert.is(outcome.status, String(grpc.status.INTERNAL), outcome.message);
  assert.is(outcome.replies.length, 1);
  assert.is(outcome.replies[0]!.code, 0, outcome.replies[0]!.error);
});

test('deadline ends an idle stream', async () => {
  const started = Date.now();
  const call = openStream({ 'grpc-timeout': '200m' });
  const outcome = await call.done;
  assert.is(outcome.status, String(grpc.status.DEADLINE_EXCEEDED), outcome.message);
  assert.ok(Date.now() - started < 5000, `ended after ${Date.now() - started} ms`);
});

test('deadline ends stream after replies', async () => {
  const call = openStream({ 'grpc-timeout': '300m' });
  call.stream.write(appendRequestFrame(`deadline-${Date.now()}`));
  const outcome = await call.done;
  assert.is(outcome.status, String(grpc.status.DEADLINE_EXCEEDED), outcome.message);
  assert.is(outcome.replies.length, 1);
  assert.is(outcome.replies[0]!.code, 0, outcome.replies[0]!.error);
});

test('gzip call goes to grpc-js', async () => {
  const valueset = `gzip-${Date.now()}`;
  const message = appendRequestFrame(valueset).subarray(prefixBytes);
  const frame = grpcFrame(zlib.gzipSync(message));
  frame[0] = 1;
  const outcome = await sendAll(frame, { 'grpc-encoding': 'gzip', 'grpc-accept-encoding': 'identity,gzip' });
  assert.is(outcome.status, '0', outcome.message);
  assert.is(outcome.replies.length, 1);
  const reply = outcome.replies[0]!;
  assert.is(reply.code, 0, reply.error);
  assert.ok(reply.index > 0, `index ${reply.index}`);
  // The same valueset through the member's own handler is a duplicate at the same index.
  const plain = await sendAll(appendRequestFrame(valueset));
  assert.equal(plain.replies, [{ index: reply.index, duplicate: true, code: 0, error: '' }]);
});

test('client reset logs no warning', async () => {
  const logFile = tc.cluster.member(memberId).logFile;
  const before = fs.readFileSync(logFile, 'utf8').length;
  const half = appendRequestFrame(`reset-half-${Date.now()}`);
  // A reset inside a message, one inside the prefix, and one with appends in flight.
  const cuts = [
    Buffer.concat([appendRequestFrame(`reset-a-${Date.now()}`), half.subarray(0, half.length - 3)]),
    Buffer.concat([appendRequestFrame(`reset-b-${Date.now()}`), half.subarray(0, 2)]),
    Buffer.concat(Array.from({ length: 200 }, (_, i) => appendRequestFrame(`reset-c-${Date.now()}-${i}`))),
  ];
  for (const [i, cut] of cuts.entries()) {
    const call = openStream();
    call.stream.write(cut);
    if (i < 2) await waitFor('the first reply', async () => call.replies.length > 0, 5000);
    call.stream.close(http2.constants.NGHTTP2_CANCEL);
    await call.done;
  }
  const after = await sendAll(appendRequestFrame(`after-reset-${Date.now()}`));
  assert.is(after.status, '0', 'the member still serves streams');
  assert.is(after.replies[0]?.code, 0);
  // Lines that were still being written get a moment to reach the file.
  await sleep(300);
  const added = fs.readFileSync(logFile, 'utf8').slice(before);
  assert.not.match(added, /"level":40/);
  assert.not.match(added, /"level":50/);
});

// Last: it stops a member.
test('shutdown replies before UNAVAILABLE', async () => {
  // The follower forwards its appends to the leader, and the leader is paused
  // for less than the election timeout, so the appends are in flight when the
  // follower gets SIGTERM. They commit within the shutdown's grace period.
  const follower = tc.cluster.members.find((m) => m.id !== memberId)!;
  const followerSession = http2.connect(`http://${follower.grpc}`);
  followerSession.on('error', () => undefined);
  const tag = Date.now();
  const valuesets = Array.from({ length: 200 }, (_, i) => `shutdown-${tag}-${i}`);
  const call = openStream({}, followerSession);
  call.stream.write(appendRequestFrame(`shutdown-${tag}-first`));
  await waitFor('the first reply', async () => call.replies.length > 0, 5000);
  tc.cluster.pauseMember(memberId);
  let exitCode: Promise<number | null>;
  try {
    call.stream.write(Buffer.concat(valuesets.map((v) => appendRequestFrame(v))));
    await sleep(50);
    exitCode = tc.cluster.stopMember(follower.id, 'SIGTERM');
    await sleep(50);
    assert.is(call.replies.length, 1, 'the appends are still in flight at SIGTERM');
  } finally {
    tc.cluster.resumeMember(memberId);
  }
  const outcome = await call.done;
  followerSession.destroy();
  assert.is(await exitCode, 0, 'the member exits cleanly');

  assert.is(outcome.status, String(grpc.status.UNAVAILABLE), outcome.message);
  assert.match(outcome.message, /shutting down/);
  const replies = outcome.replies.slice(1);
  assert.is(replies.length, valuesets.length);
  const acknowledged = replies.filter((reply) => reply.code === 0);
  assert.ok(acknowledged.length > 0, 'some appends were acknowledged');
  await waitForLeader(tc.cluster, tc.cluster.members.filter((m) => m.id !== follower.id).map((m) => m.id));
  const stored = await storedValuesets();
  const misplaced = replies.findIndex((reply, i) => reply.code === 0 && stored.get(reply.index) !== valuesets[i]);
  assert.is(misplaced, -1, `first acknowledged reply whose index does not hold its valueset: ${misplaced}`);
});

test.run();
