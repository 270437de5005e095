import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeMessage, valuesetBytesMax } from '../../src/storage/codec';

test('round trip keeps valueset and time', () => {
  const record = { valueset: 'héllo ☃ 𝄞', receivedAtMs: 1_700_000_000_123 };
  assert.equal(decodeMessage(encodeMessage(record)), record);
});

test('layout is 8-byte big-endian time then UTF-8', () => {
  const data = Buffer.from(encodeMessage({ valueset: 'é', receivedAtMs: 258 }));
  assert.equal(Array.from(data), [0, 0, 0, 0, 0, 0, 1, 2, 0xc3, 0xa9]);
});

test('negative time and empty valueset round trip', () => {
  const record = { valueset: '', receivedAtMs: -5 };
  assert.equal(decodeMessage(encodeMessage(record)), record);
});

test('leading byte order mark is kept', () => {
  const record = { valueset: '\ufeffwith bom', receivedAtMs: 1 };
  assert.is(decodeMessage(encodeMessage(record)).valueset, '\ufeffwith bom');
});

test('decode reads a view at an offset', () => {
  const encoded = encodeMessage({ valueset: 'inner', receivedAtMs: 42 });
  const outer = new Uint8Array(encoded.byteLength + 3);
  outer.set(encoded, 3);
  assert.equal(decodeMessage(outer.subarray(3)), { valueset: 'inner', receivedAtMs: 42 });
});

test('decode rejects data shorter than the prefix', () => {
  assert.throws(() => decodeMessage(new Uint8Array(7)), /at least 8 bytes, got 7/);
});

test('encode rejects a time that is not a safe integer', () => {
  assert.throws(() => encodeMessage({ valueset: 'x', receivedAtMs: 1.5 }), /safe integer/);
});

test('valueset limit is 65536 bytes', () => {
  assert.is(valuesetBytesMax, 65_536);
  const record = { valueset: 'a'.repeat(valuesetBytesMax), receivedAtMs: 0 };
  assert.is(encodeMessage(record).byteLength, 8 + valuesetBytesMax);
});

test.run();
