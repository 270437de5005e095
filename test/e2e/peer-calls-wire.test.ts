// Raft and Forward calls sent to a real member, through grpc-js clients as
// peers of older builds send them, and as raw HTTP/2 streams with broken
// framing. The member serves them with its own handlers (src/grpc/peer-calls.ts).
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { forwardPath, raftPath } from '../../src/grpc/peer-calls';
import { encodeMessages } from '../../src/grpc/peer-codec';
import { forwardBatchMax, grpcMessageBytesMax } from '../../src/grpc/peer-link';
import { encodeVarint, grpcFrame } from '../../src/grpc/protobuf-fields';
import { connect, sleep, startCluster, waitFor, waitForLeader, type TestCluster } from './harness';

interface ForwardRepliesWire {
  readonly batchId: number;
  readonly replies: { index: number; duplicate: boolean; code: number; error: string }[];
}

type PeerClient = grpc.Client & {
  Raft(callback: grpc.requestCallback<object>): grpc.ClientWritableStream<{ payload: Buffer }>;
  Forward(): grpc.ClientDuplexStream<{ batchId: number; valuesets: string[] }, ForwardRepliesWire>;
};

/** Time after which rawCall() cancels a call that has not ended. */
const rawCallTimeoutMs = 10_000;

let tc: TestCluster;
let address: string;
let client: PeerClient;
let session: http2.ClientHttp2Session;

test.before(async () => {
  tc = await startCluster({ size: 1 });
  const leader = await waitForLeader(tc.cluster);
  address = tc.cluster.member(leader.id).grpc;
  const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
  client = new Peer(address, grpc.credentials.createInsecure()) as unknown as PeerClient;
  session = http2.connect(`http://${address}`);
});

test.after(async () => {
  session.close();
  client.close();
  await tc.close();
});

/** Sends `body` on a raw HTTP/2 call to `path` and resolves with the response body and the status and message of its trailers. */
function rawCall(
  path: string,
  body: Buffer,
  endStream = true,
  extraHeaders: http2.OutgoingHttpHeaders = {},
): Promise<{ status: string; message: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders });
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on('response', (headers) => {
      if (headers['grpc-status'] === undefined) return;
      // Trailers only: the call is over even if this side has not ended its request.
      trailers = headers;
      // The close waits a turn: closing inside a 'response' listener once aborted Node 20.20.2 on an http2 assertion.
      if (!endStream) setImmediate(() => stream.close(http2.constants.NGHTTP2_CANCEL));
    });
    stream.on('trailers', (t) => (trailers = t));
    const giveUp = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), rawCallTimeoutMs);
    stream.on('close', () => {
      clearTimeout(giveUp);
      const message = decodeURIComponent(String(trailers['grpc-message'] ?? ''));
      resolve({ status: String(trailers['grpc-status']), message, body: Buffer.concat(chunks) });
    });
    stream.on('error', reject);
    if (endStream) stream.end(body);
    else stream.write(body);
  });
}

/** Sends batches on one Forward call, ends it, and resolves with every reply once the member ends the call. */
function forward(batches: readonly { batchId: number; valuesets: string[] }[]): Promise<ForwardRepliesWire[]> {
  return new Promise((resolve, reject) => {
    const call = client.Forward();
    const replies: ForwardRepliesWire[] = [];
    call.on('data', (reply: ForwardRepliesWire) => replies.push(reply));
    call.on('error', reject);
    call.on('end', () => resolve(replies));
    for (const batch of batches) call.write(batch);
    call.end();
  });
}

test('raft call gets its ack', async () => {
  const acked = await new Promise<grpc.ServiceError | null>((resolve) => {
    const call = client.Raft((err) => resolve(err));
    call.write({ payload: encodeMessages([]) });
    call.end();
  });
  assert.is(acked, null);
});

test('invalid frames warn once overall', async () => {
  const logFile = tc.cluster.member('n1').logFile;
  const before = fs.readFileSync(logFile, 'utf8').length;
  // The msgpack encoding of the number 1 is not a list of messages, and each frame goes on a call of its own.
  const frame = grpcFrame(Buffer.from([0x0a, 0x01, 0x01]));
  for (let i = 0; i < 3; i++) {
    assert.is((await rawCall(raftPath, frame)).status, '0');
  }
  const warnings = (): string[] => fs.readFileSync(logFile, 'utf8').slice(before).split('\n').filter((line) => line.includes('dropped an invalid peer frame'));
  await waitFor('the warning in the log', async () => warnings().length > 0, 5000);
  // Lines that were still being written get a moment to reach the file.
  await sleep(300);
  assert.is(warnings().length, 1, 'one warning for three calls');
});

test('raft framing errors get status', async () => {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(grpcMessageBytesMax + 1, 1);
  const large = await rawCall(raftPath, prefix, false);
  assert.is(large.status, String(grpc.status.RESOURCE_EXHAUSTED));
  assert.is(large.message, `Received message larger than max (${grpcMessageBytesMax + 1} vs. ${grpcMessageBytesMax})`);
  const compressed = grpcFrame(Buffer.from([0x0a, 0x01, 0x90]));
  compressed[0] = 1;
  assert.match((await rawCall(raftPath, compressed)).message, /marked compressed/);
  assert.match((await rawCall(raftPath, Buffer.from([0, 0]))).message, /ended inside the 5-byte message prefix/);
  const reply = await connect(address).append(`after-raft-errors-${Date.now()}`, 5000);
  assert.ok(reply.index > 0, 'the member still appends');
});

test('forward replies match batches', async () => {
  const tag = Date.now();
  const replies = await forward([
    { batchId: 7, valuesets: [`fw-a-${tag}`, `fw-b-${tag}`, `fw-a-${tag}`] },
    { batchId: 8, valuesets: [''] },
  ]);
  assert.equal(replies.map((r) => Number(r.batchId)).sort(), [7, 8]);
  const first = replies.find((r) => Number(r.batchId) === 7)!.replies;
  assert.is(first.length, 3);
  assert.ok(Number(first[0]!.index) > 0, `index ${first[0]!.index}`);
  assert.is(Number(first[1]!.index), Number(first[0]!.index) + 1);
  assert.equal({ index: Number(first[2]!.index), duplicate: first[2]!.duplicate }, { index: Number(first[0]!.index), duplicate: true });
  const empty = replies.find((r) => Number(r.batchId) === 8)!.replies[0]!;
  assert.is(empty.code, grpc.status.INVALID_ARGUMENT);
  assert.match(empty.error, /valueset/);
});

test('forward call without batches ends', async () => {
  assert.equal(await forward([]), []);
});

test('malformed forward batch fails call', async () => {
  // Field 2 declares 9 bytes, and the message ends after 1.
  const outcome = await rawCall(forwardPath, grpcFrame(Buffer.from([0x12, 0x09, 0x61])));
  assert.is(outcome.status, String(grpc.status.INTERNAL));
  assert.match(outcome.message, /^invalid ForwardBatch: field 2 declares 9 bytes/);
});

/** Encodes a ForwardBatch of `valuesets`, with the batch id given as the bytes of its varint. */
function forwardBatch(batchId: Buffer, valuesets: readonly string[]): Buffer {
  const parts = [Buffer.from([0x08]), batchId];
  for (const valueset of valuesets) {
    const text = Buffer.from(valueset);
    parts.push(Buffer.from([0x12]), encodeVarint(text.length), text);
  }
  return grpcFrame(Buffer.concat(parts));
}

test('forward batch over limit fails', async () => {
  const valuesets = Array.from({ length: forwardBatchMax + 1 }, (_, i) => `over-${i}`);
  const outcome = await rawCall(forwardPath, forwardBatch(encodeVarint(1), valuesets));
  assert.is(outcome.status, String(grpc.status.RESOURCE_EXHAUSTED));
  assert.is(outcome.message, `a ForwardBatch carries ${forwardBatchMax + 1} valuesets, the limit is ${forwardBatchMax}`);
});

test('large batch id comes back', async () => {
  const id = Buffer.from('ffffffffffffffffff01', 'hex');
  const outcome = await rawCall(forwardPath, forwardBatch(id, [`big-id-${Date.now()}`]));
  assert.is(outcome.status, '0');
  assert.is(outcome.body.subarray(5, 5 + 1 + id.length).toString('hex'), `08${id.toString('hex')}`);
});

test('peer calls keep deadlines', async () => {
  for (const path of [raftPath, forwardPath]) {
    const started = Date.now();
    const outcome = await rawCall(path, Buffer.alloc(0), false, { 'grpc-timeout': '200m' });
    assert.is(outcome.status, String(grpc.status.DEADLINE_EXCEEDED), path);
    assert.ok(Date.now() - started < 5000, `${path} ended after ${Date.now() - started} ms`);
  }
});

test('cancelled calls log no warning', async () => {
  const logFile = tc.cluster.member('n1').logFile;
  const before = fs.readFileSync(logFile, 'utf8').length;
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(300_000, 1);
  for (const path of [raftPath, forwardPath]) {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('error', () => undefined);
    stream.write(Buffer.concat([prefix, Buffer.alloc(1000)]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    stream.close(http2.constants.NGHTTP2_CANCEL);
  }
  const reply = await connect(address).append(`after-cancel-${Date.now()}`, 5000);
  assert.ok(reply.index > 0, 'the member still appends');
  const added = fs.readFileSync(logFile, 'utf8').slice(before);
  assert.not.match(added, /peer call failed/);
});

test.run();
