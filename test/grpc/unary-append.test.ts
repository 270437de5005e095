// The AppendReply encoders of the unary Append handler and of AppendStream,
// and the grpc-message encoder, checked against the proto loader's encoder
// and decoder and URI decoding.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { encodeStreamReply } from '../../src/grpc/append-stream';
import { encodeReply, percentEncode } from '../../src/grpc/unary-append';

const ingest = (loadReplogPackage()['Ingest'] as grpc.ServiceClientConstructor).service;
const decodeReply = ingest['Append']!.responseDeserialize as (bytes: Buffer) => { index: number | string; duplicate: boolean };

test('replies decode with the proto', () => {
  for (const index of [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    for (const duplicate of [false, true]) {
      const decoded = decodeReply(encodeReply({ index, duplicate }));
      assert.is(String(decoded.index), String(index), `index ${index}`);
      assert.is(decoded.duplicate, duplicate);
    }
  }
  assert.is(encodeReply({ index: 0, duplicate: false }).length, 0, 'default fields are left out');
});

test('stream replies match proto decoding', () => {
  const encodeProto = ingest['AppendStream']!.responseSerialize as (reply: object) => Buffer;
  const decodeProto = ingest['AppendStream']!.responseDeserialize as (bytes: Buffer) => object;
  for (const reply of [
    { index: 0, duplicate: false, code: 0, error: '' },
    { index: 1, duplicate: false, code: 0, error: '' },
    { index: 2 ** 40 + 3, duplicate: true, code: 0, error: '' },
    { index: 0, duplicate: false, code: 3, error: 'invalid valueset: empty' },
    { index: 0, duplicate: false, code: 8, error: 'overloaded: naïve ✓ '.repeat(20) },
    { index: 0, duplicate: false, code: 14, error: '' },
  ]) {
    const decoded = decodeProto(encodeStreamReply(reply)) as { index: unknown; duplicate: boolean; code: number; error: string };
    assert.equal(decoded, decodeProto(encodeProto(reply)), JSON.stringify(reply));
    assert.equal([String(decoded.index), decoded.duplicate, decoded.code, decoded.error], [String(reply.index), reply.duplicate, reply.code, reply.error]);
  }
  assert.is(encodeStreamReply({ index: 0, duplicate: false, code: 0, error: '' }).length, 0, 'default fields are left out');
});

test('status details survive percent-encoding', () => {
  for (const text of ['plain text (with "quotes")', '100% full', 'naïve ünïcödé ✓', 'line\nbreak\ttab', '']) {
    const encoded = percentEncode(text);
    assert.ok(/^[\x20-\x7e]*$/.test(encoded), `printable ASCII only: ${encoded}`);
    assert.is(decodeURIComponent(encoded), text);
  }
  assert.is(percentEncode('no change'), 'no change');
});

test.run();
