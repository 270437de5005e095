// The AppendReply encoder and the grpc-message encoder of the unary Append
// handler, checked against the proto loader's decoder and URI decoding.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
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

test('status details survive percent-encoding', () => {
  for (const text of ['plain text (with "quotes")', '100% full', 'naïve ünïcödé ✓', 'line\nbreak\ttab', '']) {
    const encoded = percentEncode(text);
    assert.ok(/^[\x20-\x7e]*$/.test(encoded), `printable ASCII only: ${encoded}`);
    assert.is(decodeURIComponent(encoded), text);
  }
  assert.is(percentEncode('no change'), 'no change');
});

test.run();
