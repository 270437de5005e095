import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeMessage,
  decodeStorableMessage,
  encodeMessage,
  encodeMessageBatch,
  valuesetBytesMax,
} from '../../src/storage/codec';

/** Returns message data with `receivedAtMs` as a raw signed 64-bit integer. */
function dataWithTime(receivedAtMs: bigint, valueset = 'v'): Buffer {
  const data = Buffer.alloc(8 + Buffer.byteLength(valueset));
  data.writeBigInt64BE(receivedAtMs, 0);
  data.write(valueset, 8, 'utf8');
  return data;
}

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

test('batch encodes like one message each', () => {
  const records = [
    { valueset: 'héllo ☃ 𝄞', receivedAtMs: 1_700_000_000_123 },
    { valueset: '', receivedAtMs: -5 },
    { valueset: 'x', receivedAtMs: 7 },
  ];
  const views = encodeMessageBatch(records);
  assert.is(views.length, records.length);
  records.forEach((record, i) => {
    assert.equal(Array.from(views[i]!), Array.from(encodeMessage(record)));
    assert.equal(decodeMessage(views[i]!), record);
  });
});

test('batch views share one unpooled buffer', () => {
  const views = encodeMessageBatch([
    { valueset: 'a', receivedAtMs: 1 },
    { valueset: 'bc', receivedAtMs: 2 },
  ]);
  const buffer = views[0]!.buffer;
  assert.is(views[1]!.buffer, buffer);
  // Exactly the two messages, so no other buffer shares the allocation.
  assert.is(buffer.byteLength, 9 + 10);
  assert.is(views[1]!.byteOffset, 9);
});

test('batch of no records is empty', () => {
  assert.equal(encodeMessageBatch([]), []);
});

test('batch rejects a time that is not a safe integer', () => {
  assert.throws(() => encodeMessageBatch([{ valueset: 'x', receivedAtMs: Number.NaN }]), /safe integer/);
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

test('decode accepts the safe integer bounds', () => {
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  for (const time of [max, -max, 2n ** 32n, -(2n ** 32n) - 1n, -1n, 0n]) {
    assert.is(decodeMessage(dataWithTime(time)).receivedAtMs, Number(time), String(time));
    assert.is(decodeStorableMessage(dataWithTime(time)).receivedAtMs, Number(time), String(time));
  }
});

test('encoding writes signed 64-bit times', () => {
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  for (const time of [max, -max, 2n ** 32n, 2n ** 32n - 1n, -(2n ** 32n), -(2n ** 32n) - 1n, 2n ** 31n, -1n, 0n]) {
    const record = { valueset: 'v', receivedAtMs: Number(time) };
    assert.equal(Buffer.from(encodeMessage(record)), dataWithTime(time), String(time));
    assert.equal(encodeMessageBatch([record])[0], dataWithTime(time), String(time));
  }
});

test('decode rejects times beyond the safe integers', () => {
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  for (const time of [max + 1n, -max - 1n, max + 2n, 2n ** 63n - 1n, -(2n ** 63n)]) {
    assert.throws(() => decodeMessage(dataWithTime(time)), /safe integer/, String(time));
    assert.throws(() => decodeStorableMessage(dataWithTime(time)), /safe integer/, String(time));
  }
});

test('storable message keeps valid UTF-8 as bytes', () => {
  const data = encodeMessage({ valueset: 'héllo ☃ 𝄞\u0000', receivedAtMs: 5 });
  const message = decodeStorableMessage(data);
  assert.ok(Buffer.isBuffer(message.valueset));
  assert.is(message.valueset.toString(), 'héllo ☃ 𝄞\u0000');
  assert.is(message.receivedAtMs, 5);
});

test('storable message decodes invalid UTF-8 as decode does', () => {
  const data = Buffer.concat([dataWithTime(1n, 'a'), Buffer.from([0xff, 0xc3]), Buffer.from('b')]);
  const message = decodeStorableMessage(data);
  assert.is(typeof message.valueset, 'string');
  assert.is(message.valueset, decodeMessage(data).valueset);
  assert.is(message.valueset, 'a\ufffd\ufffdb');
});

test('storable message rejects data shorter than the prefix', () => {
  assert.throws(() => decodeStorableMessage(new Uint8Array(7)), /at least 8 bytes, got 7/);
});

test.run();
