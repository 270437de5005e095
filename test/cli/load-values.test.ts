// The unique values that `replog bench` and the etcd load client send.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { uniqueValueMaker } from '../../src/cli/load-flags';

test('sequential values share a prefix', () => {
  const valueOf = uniqueValueMaker(40);
  const first = valueOf(1);
  const second = valueOf(2);
  assert.is(first.length, 40);
  assert.is(first.slice(0, 19), second.slice(0, 19));
  assert.ok(first < second);
});

test('random values are unique and padded', () => {
  const valueOf = uniqueValueMaker(60, 'random');
  const values = Array.from({ length: 10_000 }, (_, sequence) => valueOf(sequence));
  assert.is(new Set(values).size, values.length);
  for (const value of values) assert.is(value.length, 60);
  assert.match(values[0]!, /^[0-9a-f]{16}-bench-/);
});

test('random values start anywhere', () => {
  const valueOf = uniqueValueMaker(100, 'random');
  const firstDigits = new Set(Array.from({ length: 1_000 }, (_, sequence) => valueOf(sequence)[0]));
  assert.is(firstDigits.size, 16);
});

test.run();
