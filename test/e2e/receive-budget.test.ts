// A member bounds the request bytes that its Append and AppendStream calls
// have begun to receive (--receive-bytes-max). Calls that stop partway
// through 1 MiB messages fill the budget, a further partial message gets
// RESOURCE_EXHAUSTED with a requested pause, a request that arrives whole
// still passes, and a reset call gives its bytes back.
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendStreamPath } from '../../src/grpc/append-stream';
import { grpcMessageBytesMax } from '../../src/grpc/peer-link';
import { appendPath } from '../../src/grpc/unary-append';
import { sleep, startCluster, waitFor, type TestCluster } from './harness';

/** Budget of the member: three messages of the largest size. */
const budgetBytes = 3 * grpcMessageBytesMax;

let tc: TestCluster;
let session: http2.ClientHttp2Session;

test.before(async () => {
  tc = await startCluster({ size: 1, memberArgs: ['--receive-bytes-max', String(budgetBytes)] });
  session = http2.connect(`http://${tc.cluster.members[0]!.grpc}`);
});

test.after(async () => {
  session.close();
  await tc.close();
});

/** Returns a message prefix that declares `length` bytes. */
function prefix(length: number): Buffer {
  const bytes = Buffer.alloc(5);
  bytes.writeUInt32BE(length, 1);
  return bytes;
}

/** Returns one gRPC message of an AppendRequest with `valueset` (under 2 MiB, so the length fits three varint bytes). */
function frame(valueset: string): Buffer {
  const text = Buffer.from(valueset);
  const length = Buffer.from([0x80 | (text.length & 0x7f), 0x80 | ((text.length >> 7) & 0x7f), text.length >> 14]);
  const message = Buffer.concat([Buffer.from([0x0a]), length, text]);
  return Buffer.concat([prefix(message.length), message]);
}

interface RawCall {
  readonly stream: http2.ClientHttp2Stream;
  /** The status headers or trailers, once the call ends. */
  readonly ended: Promise<http2.IncomingHttpHeaders>;
}

/**
 * Opens a call on `path` with `extraHeaders`, writes `parts` one by one with
 * a pause between them, and leaves it open unless `end`.
 */
function openCall(path: string, parts: readonly Buffer[], end: boolean, extraHeaders: http2.OutgoingHttpHeaders = {}): RawCall {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders });
  let status: http2.IncomingHttpHeaders = {};
  // A status ends the call, but the stream closes only once this side ends too.
  const closeOnStatus = (headers: http2.IncomingHttpHeaders): void => {
    status = headers;
    // The close waits a turn, as in unary-append-wire.test.ts: closing inside the listener once aborted Node 20.
    if (!end) setImmediate(() => stream.close(http2.constants.NGHTTP2_CANCEL));
  };
  stream.on('response', (headers) => {
    if (headers['grpc-status'] !== undefined) closeOnStatus(headers);
  });
  stream.on('trailers', closeOnStatus);
  stream.on('data', () => undefined);
  stream.on('error', () => undefined);
  const ended = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.on('close', () => resolve(status)));
  void (async () => {
    for (const [i, part] of parts.entries()) {
      if (i > 0) await sleep(50);
      if (end && i === parts.length - 1) stream.end(part);
      else stream.write(part);
    }
  })();
  return { stream, ended };
}

/** Opens three calls that each declare a 1 MiB message and send 10 bytes of it. */
function fillBudget(path: string): RawCall[] {
  return Array.from({ length: 3 }, () => openCall(path, [Buffer.concat([prefix(grpcMessageBytesMax), Buffer.alloc(10)])], false));
}

async function resetAll(calls: readonly RawCall[]): Promise<void> {
  for (const call of calls) call.stream.close(http2.constants.NGHTTP2_CANCEL);
  await Promise.all(calls.map((call) => call.ended));
}

/** Returns the member's replog_receive_bytes_reserved. */
async function reservedBytes(): Promise<number> {
  const metrics = await (await fetch(`http://${tc.cluster.members[0]!.http}/metrics`)).text();
  const value = /^replog_receive_bytes_reserved (\d+)$/m.exec(metrics)?.[1];
  if (value === undefined) throw new Error('/metrics has no replog_receive_bytes_reserved');
  return Number(value);
}

function expectOverload(status: http2.IncomingHttpHeaders): void {
  assert.is(status['grpc-status'], String(grpc.status.RESOURCE_EXHAUSTED), decodeURIComponent(String(status['grpc-message'])));
  assert.match(decodeURIComponent(String(status['grpc-message'])), /bytes of requests are being received .*--receive-bytes-max/);
  assert.is(status['grpc-retry-pushback-ms'], '100');
}

test('unary partial message over budget', async () => {
  const holders = fillBudget(appendPath);
  const valueset = `budget-${Date.now()}-${'v'.repeat(1000)}`;
  const whole = frame(valueset);
  // Sent in two parts, the request stays partial for a moment and needs the budget.
  const rejected = openCall(appendPath, [whole.subarray(0, 100), whole.subarray(100)], true);
  expectOverload(await rejected.ended);

  const inOneChunk = openCall(appendPath, [frame(`${valueset}-whole`)], true);
  assert.is((await inOneChunk.ended)['grpc-status'], '0', 'a request that arrives whole needs no budget');

  await resetAll(holders);
  const accepted = openCall(appendPath, [whole.subarray(0, 100), whole.subarray(100)], true);
  assert.is((await accepted.ended)['grpc-status'], '0', 'reset calls gave their bytes back');
});

test('stream partial message over budget', async () => {
  const holders = fillBudget(appendStreamPath);
  const whole = frame(`budget-stream-${Date.now()}-${'s'.repeat(1000)}`);
  const rejected = openCall(appendStreamPath, [whole.subarray(0, 100), whole.subarray(100)], true);
  expectOverload(await rejected.ended);

  await resetAll(holders);
  const accepted = openCall(appendStreamPath, [whole.subarray(0, 100), whole.subarray(100)], true);
  assert.is((await accepted.ended)['grpc-status'], '0', 'reset streams gave their bytes back');
});

test('failed calls release their bytes', async () => {
  // Six calls of 0.5 MiB each fit the budget of 3 MiB together.
  const partial = Buffer.concat([prefix(grpcMessageBytesMax / 2), Buffer.alloc(10)]);
  const whole = frame(`budget-release-${Date.now()}`);
  const calls = [
    openCall(appendPath, [partial], false),
    openCall(appendPath, [partial], false, { 'grpc-timeout': '50m' }),
    openCall(appendPath, [partial], true),
    openCall(appendStreamPath, [partial], false),
    openCall(appendStreamPath, [partial], false, { 'grpc-timeout': '50m' }),
    openCall(appendStreamPath, [Buffer.concat([whole, partial])], true),
  ];
  await waitFor('the partial messages to reserve their bytes', async () => (await reservedBytes()) >= grpcMessageBytesMax);
  // The calls without a deadline or an end wait for a reset.
  await sleep(200);
  calls[0]!.stream.close(http2.constants.NGHTTP2_CANCEL);
  calls[3]!.stream.close(http2.constants.NGHTTP2_CANCEL);
  const statuses = await Promise.all(calls.map((call) => call.ended));
  assert.is(statuses[1]!['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
  assert.is(statuses[2]!['grpc-status'], String(grpc.status.INTERNAL), 'a request that ends inside its message');
  assert.is(statuses[4]!['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
  assert.is(statuses[5]!['grpc-status'], String(grpc.status.INTERNAL), 'a stream that ends inside its second message');
  await waitFor('every reserved byte to be released', async () => (await reservedBytes()) === 0);
});

test.after.each(async () => {
  await waitFor('the budget to be empty between tests', async () => (await reservedBytes()) === 0);
});

test.run();
