import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType } from '../../src/consensus/types';
import type { Entry } from '../../src/consensus/types';
import {
  decodeEntryBatch,
  encodeEntryBatch,
  entryBatchPrefix,
  entryHeaderBytes,
} from '../../src/storage/entry-batch';

const sample: readonly Entry[] = [
  { index: 7, term: 1, type: EntryType.Noop, data: new Uint8Array(0) },
  { index: 8, term: 2 ** 40 + 3, type: EntryType.Normal, data: Buffer.from('eight') },
  {
    index: 9,
    term: Number.MAX_SAFE_INTEGER,
    type: EntryType.Normal,
    data: new Uint8Array([0, 255]),
  },
];

interface AnyEntry {
  readonly index: number;
  readonly term: number;
  readonly type: number;
  readonly data: Uint8Array;
}

/** Returns entries with their data as plain arrays, for assert.equal. */
function plain(entries: readonly AnyEntry[]) {
  return entries.map((e) => ({ ...e, data: Array.from(e.data) }));
}

test('batch round trip keeps every field', () => {
  const batch = encodeEntryBatch(sample);
  assert.is(batch.length, 3 * entryHeaderBytes + 0 + 5 + 2);
  assert.equal(plain(decodeEntryBatch(batch, 7, 3)), plain(sample));
});

test('layout is term, type, length, data', () => {
  const batch = encodeEntryBatch([
    { index: 1, term: 2 ** 32 + 2, type: EntryType.Noop, data: Buffer.from('ab') },
  ]);
  assert.equal(Array.from(batch), [0, 0, 0, 1, 0, 0, 0, 2, 1, 0, 0, 0, 2, 0x61, 0x62]);
});

test('indexes come from the first index', () => {
  const decoded = decodeEntryBatch(encodeEntryBatch(sample), 100, 3);
  assert.equal(decoded.map((e) => e.index), [100, 101, 102]);
});

test('decode stops at the count', () => {
  assert.equal(decodeEntryBatch(encodeEntryBatch(sample), 7, 2).length, 2);
  assert.equal(decodeEntryBatch(encodeEntryBatch(sample), 7, 0), []);
});

test('decode stops at a cut entry', () => {
  const batch = encodeEntryBatch(sample);
  for (const cut of [batch.length - 1, entryHeaderBytes * 2 + 5, entryHeaderBytes + 3]) {
    const expected = cut >= entryHeaderBytes * 2 + 5 ? 2 : 1;
    assert.is(decodeEntryBatch(batch.subarray(0, cut), 7, 3).length, expected, `cut at ${cut}`);
  }
});

test('decode stops at a term above the safe range', () => {
  const batch = encodeEntryBatch(sample);
  batch.writeUInt32BE(0x00200000, entryHeaderBytes);
  assert.is(decodeEntryBatch(batch, 7, 3).length, 1);
});

test('decoded data is a view of the batch', () => {
  const batch = encodeEntryBatch(sample);
  const decoded = decodeEntryBatch(batch, 7, 3);
  assert.is(decoded[1]?.data.buffer, batch.buffer);
});

test('encode rejects a term that is not a safe integer', () => {
  const bad = { index: 1, term: 1.5, type: EntryType.Normal, data: new Uint8Array(0) };
  assert.throws(() => encodeEntryBatch([bad]), /entry 1: term must be a non-negative safe integer/);
});

test('prefix holds the leading entries only', () => {
  const batch = encodeEntryBatch(sample);
  const leading = decodeEntryBatch(batch, 7, 2);
  const prefix = entryBatchPrefix(batch, leading);
  assert.equal(Buffer.from(prefix), encodeEntryBatch(sample.slice(0, 2)));
  assert.is(entryBatchPrefix(batch, []).length, 0);
});

test.run();
