// The hand-written parts of the Peer service's own handlers: the gRPC message
// reader and the ForwardReplies encoder, checked against the proto loader.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { GrpcMessageReader } from '../../src/grpc/grpc-messages';
import { encodeForwardReplies } from '../../src/grpc/peer-calls';
import { encodeVarint, grpcFrame } from '../../src/grpc/protobuf-fields';

interface ForwardRepliesWire {
  readonly batchId: number;
  readonly replies: { index: number; duplicate: boolean; code: number; error: string }[];
}

const peer = (loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor).service;
const decodeReplies = peer['Forward']!.responseDeserialize as (bytes: Buffer) => ForwardRepliesWire;

/** Feeds `chunks` to a new reader and returns the messages, as hex, and the problems. */
function read(chunks: readonly Buffer[], max = 1024): { messages: string[]; problem: string | null; end: string | null } {
  const reader = new GrpcMessageReader(max);
  const out: Buffer[] = [];
  let problem: string | null = null;
  for (const chunk of chunks) {
    const found = reader.push(chunk, out);
    if (found !== null) {
      problem = `${found.code}: ${found.details}`;
      break;
    }
  }
  const end = reader.endProblem();
  return { messages: out.map((m) => m.toString('hex')), problem, end: end === null ? null : `${end.code}: ${end.details}` };
}

test('reader splits messages in one chunk', () => {
  const body = Buffer.concat([grpcFrame(Buffer.from('abc')), grpcFrame(Buffer.alloc(0)), grpcFrame(Buffer.from('z'))]);
  assert.equal(read([body]), { messages: ['616263', '', '7a'], problem: null, end: null });
});

test('reader joins byte-sized chunks', () => {
  const body = Buffer.concat([grpcFrame(Buffer.from('hello')), grpcFrame(Buffer.from('world!'))]);
  const bytes = [...body].map((byte) => Buffer.from([byte]));
  assert.equal(read(bytes).messages, ['68656c6c6f', '776f726c6421']);
});

test('reader reports cut-off calls', () => {
  assert.is(read([Buffer.from([0, 0, 0])]).end, `${grpc.status.INTERNAL}: the call ended inside the 5-byte message prefix`);
  const cut = grpcFrame(Buffer.from('abcdef')).subarray(0, 8);
  assert.is(read([cut]).end, `${grpc.status.INTERNAL}: a message declares 6 bytes, but the call ended after 3`);
});

test('reader rejects oversized messages', () => {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(1025, 1);
  assert.is(read([prefix]).problem, `${grpc.status.RESOURCE_EXHAUSTED}: Received message larger than max (1025 vs. 1024)`);
});

test('reader rejects compressed messages', () => {
  const body = grpcFrame(Buffer.from('x'));
  body[0] = 1;
  assert.match(String(read([body]).problem), new RegExp(`^${grpc.status.INTERNAL}: a message is marked compressed`));
});

test('replies decode like proto loader', () => {
  const cases: ForwardRepliesWire[] = [
    { batchId: 0, replies: [] },
    { batchId: 1, replies: [{ index: 1, duplicate: false, code: 0, error: '' }] },
    {
      batchId: 2 ** 53 - 1,
      replies: [
        { index: 2 ** 53 - 1, duplicate: true, code: 0, error: '' },
        { index: 0, duplicate: false, code: grpc.status.RESOURCE_EXHAUSTED, error: 'overloaded: 65536 appends in progress' },
        { index: 0, duplicate: false, code: 300, error: 'ünïcödé ✓ and a long text '.repeat(20) },
        { index: 128, duplicate: false, code: 0, error: '' },
      ],
    },
  ];
  for (const wire of cases) {
    const frame = encodeForwardReplies(wire.batchId === 0 ? Buffer.alloc(0) : encodeVarint(wire.batchId), wire.replies);
    assert.is(frame[0], 0, 'uncompressed');
    assert.is(frame.readUInt32BE(1), frame.length - 5, 'the prefix declares the message length');
    const decoded = decodeReplies(frame.subarray(5));
    assert.equal({ batchId: Number(decoded.batchId), replies: decoded.replies.map((r) => ({ ...r, index: Number(r.index) })) }, wire);
  }
});

test('reply repeats batch id bytes', () => {
  // 2^64 - 1, which a JavaScript number cannot hold.
  const id = Buffer.from('ffffffffffffffffff01', 'hex');
  const frame = encodeForwardReplies(id, []);
  assert.is(frame.subarray(5).toString('hex'), `08${id.toString('hex')}`);
});

test.run();
