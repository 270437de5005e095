import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType } from '../../src/consensus/types';
import type { Entry } from '../../src/consensus/types';
import { encodeMessage } from '../../src/storage/codec';
import { DigestChain } from '../../src/storage/digest';
import { digestStep, MessageStore } from '../../src/storage/message-store';
import { insertRowsMax } from '../../src/storage/state-db';
import type { ApplyOutcome, StoredMessage } from '../../src/storage/types';

const zeroDigestHex = '0'.repeat(64);

let dir = '';

test.before.each(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-message-store-'));
});

test.after.each(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function normal(index: number, valueset: string, term = 1): Entry {
  const data = encodeMessage({ valueset, receivedAtMs: 1_700_000_000_000 + index });
  return { index, term, type: EntryType.Normal, data };
}

function noop(index: number, term = 1): Entry {
  return { index, term, type: EntryType.Noop, data: new Uint8Array(0) };
}

function numbered(first: number, last: number): Entry[] {
  const list: Entry[] = [];
  for (let index = first; index <= last; index++) list.push(normal(index, `message ${index}`));
  return list;
}

/** Recomputes the contract's digest with node:crypto only, from stored rows. */
function independentDigest(messages: readonly StoredMessage[]): string {
  let digest = Buffer.alloc(32);
  for (const message of messages) {
    const indexBytes = Buffer.alloc(8);
    indexBytes.writeBigUInt64BE(BigInt(message.index));
    digest = createHash('sha256')
      .update(Buffer.concat([digest, indexBytes, Buffer.from(message.valueset, 'utf8')]))
      .digest();
  }
  return digest.toString('hex');
}

/** Returns the outcomes the contract expects, given the valuesets stored so far. */
function expectedOutcomes(entries: readonly Entry[], stored: Map<string, number>): ApplyOutcome[] {
  const outcomes: ApplyOutcome[] = [];
  for (const entry of entries) {
    if (entry.type !== EntryType.Normal) continue;
    const valueset = Buffer.from(entry.data).toString('utf8', 8);
    const storedIndex = stored.get(valueset);
    if (storedIndex === undefined) stored.set(valueset, entry.index);
    outcomes.push({
      index: entry.index,
      storedIndex: storedIndex ?? entry.index,
      duplicate: storedIndex !== undefined,
    });
  }
  return outcomes;
}

test('new store is empty', () => {
  const store = MessageStore.open(dir);
  assert.equal(store.summary(), {
    appliedIndex: 0,
    appliedTerm: 0,
    messageCount: 0,
    digest: zeroDigestHex,
  });
  assert.equal(store.read(0, 10), []);
  store.close();
  assert.ok(fs.existsSync(path.join(dir, 'state', 'CURRENT')));
});

test('same valueset twice is a duplicate', () => {
  const store = MessageStore.open(dir);
  const outcomes = store.apply([normal(1, 'a'), normal(2, 'b'), normal(3, 'a')]);
  assert.equal(outcomes, [
    { index: 1, storedIndex: 1, duplicate: false },
    { index: 2, storedIndex: 2, duplicate: false },
    { index: 3, storedIndex: 1, duplicate: true },
  ]);
  const later = store.apply([normal(4, 'b')]);
  assert.equal(later, [{ index: 4, storedIndex: 2, duplicate: true }]);
  assert.is(store.summary().messageCount, 2);
  assert.is(store.summary().appliedIndex, 4);
  assert.is(store.lookup('a'), 1);
  assert.is(store.lookup('b'), 2);
  assert.is(store.lookup('c'), undefined);
  store.close();
});

test('noop advances applied index only', () => {
  const store = MessageStore.open(dir);
  const outcomes = store.apply([noop(1, 2), noop(2, 3)]);
  assert.equal(outcomes, []);
  assert.equal(store.summary(), {
    appliedIndex: 2,
    appliedTerm: 3,
    messageCount: 0,
    digest: zeroDigestHex,
  });
  store.close();
});

test('apply is exactly-once across reopen', () => {
  const batch = [noop(1), ...numbered(2, 6)];
  const store = MessageStore.open(dir);
  store.apply(batch);
  const before = store.summary();
  store.close();

  const reopened = MessageStore.open(dir);
  assert.equal(reopened.summary(), before);
  assert.equal(reopened.apply(batch), []);
  assert.equal(reopened.summary(), before);
  const overlap = reopened.apply(numbered(5, 8));
  assert.equal(overlap.map((o) => o.index), [7, 8]);
  assert.is(reopened.summary().messageCount, 7);
  assert.is(reopened.read(0, 100).length, 7);
  reopened.close();
});

test('gap in applied entries throws and changes nothing', () => {
  const store = MessageStore.open(dir);
  store.apply(numbered(1, 2));
  const before = store.summary();
  assert.throws(() => store.apply([normal(3, 'x'), normal(5, 'y')]), /next index to apply is 4/);
  assert.equal(store.summary(), before);
  assert.is(store.lookup('x'), undefined);
  store.close();
});

test('entry data that is not a message is skipped', () => {
  const store = MessageStore.open(dir);
  const broken: Entry = { index: 2, term: 1, type: EntryType.Normal, data: new Uint8Array(3) };
  const outcomes = store.apply([normal(1, 'a'), broken, normal(3, 'c')]);
  assert.equal(outcomes.map((o) => o.index), [1, 3]);
  assert.is(store.summary().appliedIndex, 3);
  assert.is(store.summary().messageCount, 2);
  store.close();
});

test('digest of known input', () => {
  const store = MessageStore.open(dir);
  store.apply([normal(1, 'alpha'), normal(2, 'héllo wörld'), noop(3), normal(4, '☃ snow')]);
  store.apply([normal(5, 'alpha')]);
  // Computed with Python's hashlib over the same three messages.
  const expected = '10f1796d2348ce9c395888f39ffabef487f5a41eed02c02cfe8a30cdaff8068a';
  assert.is(store.summary().digest, expected);
  assert.is(store.summary().messageCount, 3);
  store.close();
});

test('digest matches an independent recomputation', () => {
  const store = MessageStore.open(dir);
  for (let first = 1; first <= 300; first += 50) store.apply(numbered(first, first + 49));
  store.apply([normal(301, 'message 7'), normal(302, 'ünïcode ✓')]);
  const digest = store.summary().digest;
  assert.is(digest, independentDigest(store.read(0, 1000)));
  store.close();
});

test('digestStep matches the contract for one step', () => {
  const indexBytes = Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]);
  const expected = createHash('sha256')
    .update(Buffer.concat([Buffer.alloc(32), indexBytes, Buffer.from('v')]))
    .digest('hex');
  assert.is(digestStep(Buffer.alloc(32), 2 ** 32 + 2, 'v').toString('hex'), expected);
});

test('read pages in ascending index order', () => {
  const store = MessageStore.open(dir);
  store.apply([...numbered(1, 10), noop(11), ...numbered(12, 25)]);
  const pages: number[][] = [];
  let from = 0;
  for (;;) {
    const page = store.read(from, 10);
    if (page.length === 0) break;
    pages.push(page.map((m) => m.index));
    from = page[page.length - 1]!.index + 1;
  }
  assert.equal(pages.map((p) => p.length), [10, 10, 4]);
  assert.equal(pages[1]?.[0], 12);
  assert.equal(store.read(24, 5), [
    { index: 24, valueset: 'message 24', receivedAtMs: 1_700_000_000_024 },
    { index: 25, valueset: 'message 25', receivedAtMs: 1_700_000_000_025 },
  ]);
  assert.throws(() => store.read(0, 0), /limit must be a positive integer/);
  assert.throws(() => store.read(-1, 5), /fromIndex must be a non-negative integer/);
  store.close();
});

test('duplicates inside one insert statement', () => {
  const store = MessageStore.open(dir);
  const stored = new Map<string, number>();
  const first = numbered(1, 10);
  assert.equal(store.apply(first), expectedOutcomes(first, stored));
  const batch = numbered(11, 50);
  batch[4] = normal(15, 'message 12');
  batch[20] = normal(31, 'message 3');
  batch[30] = normal(41, 'message 12');
  assert.equal(store.apply(batch), expectedOutcomes(batch, stored));
  assert.is(store.summary().messageCount, 47);
  assert.is(store.lookup('message 12'), 12);
  assert.is(store.lookup('message 15'), undefined);
  assert.is(store.summary().digest, independentDigest(store.read(0, 1000)));
  store.close();
});

test('batch larger than one insert statement', () => {
  const store = MessageStore.open(dir);
  const stored = new Map<string, number>();
  const batch: Entry[] = [];
  for (let index = 1; index <= insertRowsMax * 3 + 5; index++) {
    if (index % 7 === 0) batch.push(noop(index));
    else if (index % 11 === 0) batch.push({ ...normal(index, ''), data: new Uint8Array(2) });
    else batch.push(normal(index, `message ${index % 60}`));
  }
  const outcomes = store.apply(batch);
  const expected = expectedOutcomes(batch, stored).filter((o) => o.index % 11 !== 0);
  assert.equal(outcomes, expected);
  assert.is(store.summary().appliedIndex, insertRowsMax * 3 + 5);
  assert.is(store.summary().messageCount, stored.size - 1, 'the short data is no message');
  assert.is(store.summary().digest, independentDigest(store.read(0, 1000)));
  store.close();
});

test('gap after a full insert statement changes nothing', () => {
  const store = MessageStore.open(dir);
  const batch = [...numbered(1, insertRowsMax + 3), normal(insertRowsMax + 5, 'late')];
  assert.throws(() => store.apply(batch), /next index to apply is/);
  assert.is(store.summary().appliedIndex, 0);
  assert.is(store.lookup('message 1'), undefined);
  assert.equal(store.read(0, 10), []);
  store.close();
});

/** Inserts a message row behind the store's back into the closed state file of `dir`. */
function insertRawMessage(index: number, valueset: string): void {
  const stateDir = path.join(dir, 'state');
  const current = fs.readFileSync(path.join(stateDir, 'CURRENT'), 'utf8').trim();
  const raw = new Database(path.join(stateDir, current));
  raw.prepare('INSERT INTO messages VALUES (?, ?, 0)').run(index, valueset);
  raw.close();
}

test('row above the applied index fails apply', () => {
  const store = MessageStore.open(dir);
  store.apply(numbered(1, 2));
  store.close();
  insertRawMessage(5, 'message 5');
  const reopened = MessageStore.open(dir);
  const before = reopened.summary();
  assert.throws(
    () => reopened.apply(numbered(3, 6)),
    /already stores messages above applied index 2/,
  );
  assert.equal(reopened.summary(), before);
  assert.is(reopened.lookup('message 3'), undefined);
  reopened.close();
});

test('index taken by another valueset fails apply', () => {
  const store = MessageStore.open(dir);
  store.apply(numbered(1, 2));
  store.close();
  insertRawMessage(4, 'stray');
  const reopened = MessageStore.open(dir);
  assert.throws(
    () => reopened.apply(numbered(3, 5)),
    /entry 4 was not inserted, but its valueset is not stored/,
  );
  assert.is(reopened.summary().appliedIndex, 2);
  reopened.close();
});

test('valueset with NUL and non-ASCII round trips', () => {
  const store = MessageStore.open(dir);
  const valueset = 'a\u0000b ☃ 𝄞 é';
  store.apply([normal(1, valueset), normal(2, 'a')]);
  assert.equal(store.read(0, 10).map((m) => m.valueset), [valueset, 'a']);
  assert.is(store.lookup(valueset), 1);
  assert.is(store.lookup('a\u0000b'), undefined);
  assert.equal(store.apply([normal(3, valueset)]), [{ index: 3, storedIndex: 1, duplicate: true }]);
  assert.is(store.summary().digest, independentDigest(store.read(0, 10)));
  store.close();
});

test('invalid UTF-8 is stored as its decoded string', () => {
  const store = MessageStore.open(dir);
  const prefix = Buffer.from(encodeMessage({ valueset: '', receivedAtMs: 7 }));
  const data = Buffer.concat([prefix, Buffer.from('x'), Buffer.from([0xc3, 0x28])]);
  store.apply([{ index: 1, term: 1, type: EntryType.Normal, data }]);
  assert.equal(store.read(0, 10), [{ index: 1, valueset: 'x\ufffd(', receivedAtMs: 7 }]);
  assert.is(store.lookup('x\ufffd('), 1);
  const again = store.apply([normal(2, 'x\ufffd(')]);
  assert.equal(again, [{ index: 2, storedIndex: 1, duplicate: true }]);
  assert.is(store.summary().digest, independentDigest(store.read(0, 10)));
  store.close();
});

test('digest chain matches digestStep', () => {
  let stepped: Buffer = Buffer.alloc(32);
  const chain = new DigestChain(Buffer.alloc(32));
  const valuesets = ['a', 'é☃', '', 'x'.repeat(70_000), '𝄞'.repeat(40_000)];
  valuesets.forEach((valueset, i) => {
    const index = 2 ** 33 + i;
    stepped = digestStep(stepped, index, valueset);
    if (i % 2 === 0) chain.add(index, valueset);
    else chain.addUtf8(index, Buffer.from(valueset, 'utf8'));
  });
  const expected = independentDigest(
    valuesets.map((valueset, i) => ({ index: 2 ** 33 + i, valueset, receivedAtMs: 0 })),
  );
  assert.is(stepped.toString('hex'), expected);
  assert.is(chain.value().toString('hex'), expected);
});

test('digest rejects a bad previous digest or index', () => {
  assert.throws(() => digestStep(Buffer.alloc(31), 1, 'v'), /digest must be 32 bytes, got 31/);
  assert.throws(() => digestStep(Buffer.alloc(32), -1, 'v'), /non-negative safe integer/);
  assert.throws(() => digestStep(Buffer.alloc(32), 2 ** 53, 'v'), /non-negative safe integer/);
});

test('apply throughput (printed, not asserted)', () => {
  const store = MessageStore.open(dir);
  const total = 20_000;
  const batchSize = 500;
  const batches: Entry[][] = [];
  for (let first = 1; first <= total; first += batchSize) {
    const batch: Entry[] = [];
    for (let index = first; index < first + batchSize; index++) {
      batch.push(normal(index, `valueset-${index}-${'x'.repeat(64)}`));
    }
    batches.push(batch);
  }
  const started = performance.now();
  for (const batch of batches) store.apply(batch);
  const elapsedMs = performance.now() - started;
  assert.is(store.summary().messageCount, total);
  store.close();
  const perSecond = Math.round((total / elapsedMs) * 1000);
  console.log(
    `apply: ${total} entries of ~80 bytes in batches of ${batchSize}: ${elapsedMs.toFixed(0)} ms, ${perSecond} entries/s`,
  );
});

test.run();
