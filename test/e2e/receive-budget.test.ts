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
import { sleep, startCluster, type TestCluster } from './harness';

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

/** Opens a call on `path`, writes `parts` one by one with a pause between them, and leaves it open unless `end`. */
function openCall(path: string, parts: readonly Buffer[], end: boolean): RawCall {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  let status: http2.IncomingHttpHeaders = {};
  stream.on('response', (headers) => {
    if (headers['grpc-status'] !== undefined) status = headers;
  });
  stream.on('trailers', (trailers) => (status = trailers));
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

test.run();
