import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fingerprint, FingerprintTable } from '../../src/verify/fingerprint-table';

test('a valueset held by all members at one index is no duplicate', () => {
  const table = new FingerprintTable(16);
  const [hi, lo] = fingerprint('a');
  assert.is(table.visit(hi, lo, 5, 0b001), null);
  assert.is(table.visit(hi, lo, 5, 0b110), null, 'other members at the same index merge into one entry');
});

test('the same valueset at a second index is reported for the members holding both', () => {
  const table = new FingerprintTable(16);
  const [hi, lo] = fingerprint('dup');
  table.visit(hi, lo, 3, 0b011);
  assert.equal(table.visit(hi, lo, 9, 0b110), [{ index: 3, members: 0b010 }]);
  // Member 2 held it at 9 only (member 0 and 1 at 3): a third copy on member 2 points at 9.
  assert.equal(table.visit(hi, lo, 12, 0b100), [{ index: 9, members: 0b100 }]);
});

test('keeps every entry while growing far past its initial size', () => {
  const table = new FingerprintTable(16);
  const count = 50_000;
  for (let i = 1; i <= count; i++) {
    const [hi, lo] = fingerprint(`v-${i}`);
    assert.is(table.visit(hi, lo, i, 1), null);
  }
  let found = 0;
  for (let i = 1; i <= count; i += 97) {
    const [hi, lo] = fingerprint(`v-${i}`);
    const earlier = table.visit(hi, lo, count + i, 1);
    if (earlier?.[0]?.index === i) found += 1;
  }
  assert.is(found, Math.ceil(count / 97));
});

test('fingerprints of different strings differ', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) seen.add(fingerprint(`exp-1234-p1-${i}-`.padEnd(100, 'x')).join(':'));
  assert.is(seen.size, 100_000);
  assert.equal(fingerprint('same'), fingerprint('same'));
});

test.run();
