// Append and AppendStream requests sent to a real member as raw protobuf
// bytes: bytes that are not UTF-8, a string field cut off, a wrong wire type,
// and messages over the valueset and gRPC size limits. Each gets
// INVALID_ARGUMENT or RESOURCE_EXHAUSTED, and nothing is stored for it.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { grpcMessageBytesMax } from '../../src/grpc/peer-link';
import { encodeVarint } from '../../src/grpc/protobuf-fields';
import { connect, startCluster, waitForLeader, type TestCluster } from './harness';

interface AppendReply {
  readonly index: number;
  readonly duplicate: boolean;
  readonly code: number;
  readonly error: string;
}

const ingest = (loadReplogPackage()['Ingest'] as grpc.ServiceClientConstructor).service;
const decodeReply = ingest['Append']!.responseDeserialize as (bytes: Buffer) => AppendReply;
const identity = (bytes: Buffer): Buffer => bytes;

let tc: TestCluster;
let raw: grpc.Client;
/** gRPC address of the leader, which every call here goes to. */
let leaderAddress: string;

test.before(async () => {
  tc = await startCluster({ haproxy: false });
  const leader = await waitForLeader(tc.cluster);
  leaderAddress = tc.cluster.member(leader.id).grpc;
  raw = new grpc.Client(leaderAddress, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': -1,
  });
});

test.after(async () => {
  raw.close();
  await tc.close();
});

/** Encodes field 1 (valueset) as length-delimited with `declaredLength`, followed by `bytes`. */
function request(bytes: Buffer, declaredLength = bytes.length): Buffer {
  return Buffer.concat([Buffer.from([0x0a]), encodeVarint(declaredLength), bytes]);
}

/** Sends raw bytes as one Append call; resolves with the reply or the error. */
function appendRaw(body: Buffer): Promise<AppendReply | grpc.ServiceError> {
  return new Promise((resolve) => {
    raw.makeUnaryRequest('/replog.v1.Ingest/Append', identity, decodeReply, body, { deadline: Date.now() + 10_000 }, (err, reply) =>
      resolve(err ?? (reply as AppendReply)),
    );
  });
}

async function expectInvalid(body: Buffer, detail: RegExp): Promise<void> {
  const result = await appendRaw(body);
  assert.ok(result instanceof Error, `rejected, got ${JSON.stringify(result)}`);
  const err = result as grpc.ServiceError;
  assert.is(err.code, grpc.status.INVALID_ARGUMENT, err.details);
  assert.match(err.details, detail);
}

test('bytes that are not UTF-8 are rejected', async () => {
  const tag = Buffer.from(`raw-${Date.now()}-`);
  await expectInvalid(request(Buffer.concat([tag, Buffer.from([0xff])])), /not valid UTF-8/);
  await expectInvalid(request(Buffer.concat([tag, Buffer.from([0xe2, 0x82])])), /not valid UTF-8/);
  // U+FFFD itself is valid and new: nothing was stored for the rejected bytes.
  const stored = await appendRaw(request(Buffer.concat([tag, Buffer.from([0xef, 0xbf, 0xbd])])));
  assert.not.ok(stored instanceof Error, String(stored));
  assert.is((stored as AppendReply).duplicate, false);
});

test('malformed messages are rejected', async () => {
  const text = Buffer.from(`cut-${Date.now()}`);
  await expectInvalid(request(text, 200), /declares 200 bytes/);
  await expectInvalid(Buffer.from([0x08, 0x05]), /wire type 0; expected 2/);
  await expectInvalid(Buffer.from([0x0a, 0xff, 0xff, 0xff]), /cut off/);
  const reader = connect(leaderAddress);
  const stored: string[] = [];
  for await (const message of reader.read(1, 0, false)) stored.push(message.valueset);
  reader.close();
  assert.ok(stored.length > 0, 'earlier tests stored messages');
  assert.not.ok(
    stored.some((valueset) => valueset.startsWith('cut-')),
    'no part of a cut-off valueset is stored',
  );
});

/** Sends raw bytes as one Read call; resolves with the messages' count or the error. */
function readRaw(body: Buffer): Promise<number | grpc.ServiceError> {
  return new Promise((resolve) => {
    const call = raw.makeServerStreamRequest('/replog.v1.Ingest/Read', identity, identity, body, { deadline: Date.now() + 10_000 });
    let count = 0;
    call.on('data', () => count++);
    call.on('error', (err: grpc.ServiceError) => resolve(err));
    call.on('end', () => resolve(count));
  });
}

test('malformed Read requests are rejected', async () => {
  for (const [body, detail] of [
    [Buffer.from([0x0a, 0xff, 0xff, 0xff]), /field 1 \(from_index\) has wire type 2; expected 0 \(varint\)/],
    [Buffer.from([0x08, 0xff, 0xff, 0xff]), /the varint of field 1 at byte 1 is cut off/],
    [Buffer.from([0x10, 0x05, 0x1a, 0x01, 0x41]), /field 3 \(follow\) has wire type 2; expected 0 \(varint\)/],
    [Buffer.from([0x08, 0x01, 0x22, 0x05, 0x41]), /field 4 declares 5 bytes, but the 5-byte message ends first/],
  ] as const) {
    const result = await readRaw(body);
    assert.ok(result instanceof Error, `rejected, got ${String(result)}`);
    assert.is((result as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT, (result as grpc.ServiceError).details);
    assert.match((result as grpc.ServiceError).details, detail);
  }
  for (const i of [1, 2, 3]) assert.not.ok((await appendRaw(request(Buffer.from(`read-limit-${i}-${Date.now()}`)))) instanceof Error);
  // from_index 1, and limit 2 as a 10-byte varint whose low 32 bits are 2.
  const limited = await readRaw(Buffer.from([0x08, 0x01, 0x10, 0x82, 0x80, 0x80, 0x80, 0xf0, 0xff, 0xff, 0xff, 0xff, 0x01]));
  assert.is(limited, 2, 'limit keeps the low 32 bits of a longer varint');
});

test('oversized valuesets are rejected', async () => {
  await expectInvalid(request(Buffer.alloc(100_000, 'v')), /100000 UTF-8 bytes is over the limit of 65536/);
  const huge = await appendRaw(request(Buffer.alloc(grpcMessageBytesMax + 1, 'h')));
  assert.ok(huge instanceof Error, 'a message over the gRPC limit is rejected');
  assert.is((huge as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED, (huge as grpc.ServiceError).details);
  const after = await appendRaw(request(Buffer.from(`after-huge-${Date.now()}`)));
  assert.not.ok(after instanceof Error, `the member still serves: ${String(after)}`);
});

test('AppendStream replies in request order', async () => {
  const call = raw.makeBidiStreamRequest('/replog.v1.Ingest/AppendStream', identity, decodeReply, { deadline: Date.now() + 10_000 });
  const replies: AppendReply[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    call.on('data', (reply: AppendReply) => replies.push(reply));
    call.on('end', resolve);
    call.on('error', reject);
  });
  const tag = `stream-${Date.now()}`;
  call.write(request(Buffer.from(`${tag}-1`)));
  call.write(request(Buffer.concat([Buffer.from(tag), Buffer.from([0xc0, 0xaf])])));
  call.write(request(Buffer.from(`${tag}-2`)));
  call.end();
  await ended;
  assert.equal(
    replies.map((r) => r.code),
    [grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.OK],
  );
  assert.match(replies[1]!.error, /not valid UTF-8/);
});

test.run();
