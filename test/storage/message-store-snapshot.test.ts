import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType } from '../../src/consensus/types';
import type { Entry } from '../../src/consensus/types';
import { encodeMessage } from '../../src/storage/codec';
import type { StorageLogger } from '../../src/storage/logger';
import { MessageStore } from '../../src/storage/message-store';
import { fileSha256, latestSnapshot, listSnapshots } from '../../src/storage/snapshot-files';

let dir = '';

test.before.each(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-state-snapshot-'));
});

test.after.each(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function numbered(first: number, last: number, term = 1): Entry[] {
  const list: Entry[] = [];
  for (let index = first; index <= last; index++) {
    const data = encodeMessage({ valueset: `message ${index}`, receivedAtMs: index });
    list.push({ index, term, type: EntryType.Normal, data });
  }
  return list;
}

function stateDir(dataDir: string = dir): string {
  return path.join(dataDir, 'state');
}

function currentName(dataDir: string = dir): string {
  return fs.readFileSync(path.join(stateDir(dataDir), 'CURRENT'), 'utf8').trim();
}

function stateFolderNames(dataDir: string = dir): string[] {
  return fs.readdirSync(stateDir(dataDir)).sort();
}

function recordingLogger(): StorageLogger & { readonly warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => undefined, warn: (_fields, message) => warnings.push(message) };
}

/** Opens a store in `dataDir`, applies entries 1..last in batches of 100, and returns it open. */
function storeWith(last: number, dataDir: string = dir): MessageStore {
  const store = MessageStore.open(dataDir);
  for (let first = 1; first <= last; first += 100) {
    store.apply(numbered(first, Math.min(first + 99, last)));
  }
  return store;
}

test('snapshot restores into a fresh folder', async () => {
  const store = storeWith(250);
  const snapshot = await store.saveSnapshot();
  const summary = store.summary();
  const messages = store.read(0, 1000);
  store.close();
  assert.equal(snapshot.meta, { index: 250, term: 1 });
  assert.is(snapshot.sha256, await fileSha256(snapshot.path));
  assert.equal(latestSnapshot(path.join(dir, 'snapshots')), snapshot);

  const freshDir = path.join(dir, 'fresh');
  const fresh = MessageStore.open(freshDir);
  fresh.restoreFrom(snapshot.path);
  assert.equal(fresh.summary(), summary);
  assert.equal(fresh.read(0, 1000), messages);
  assert.equal(fresh.apply(numbered(250, 251)).map((o) => o.index), [251]);
  fresh.close();

  const reopened = MessageStore.open(freshDir);
  assert.is(reopened.summary().appliedIndex, 251);
  reopened.close();
});

test('restore switches CURRENT and deletes the old file', async () => {
  const store = storeWith(10);
  const snapshotPath = path.join(dir, 'copy.db');
  assert.equal(await store.createSnapshot(snapshotPath), { index: 10, term: 1 });
  store.apply(numbered(11, 20));
  assert.is(currentName(), 'state-000001.db');

  store.restoreFrom(snapshotPath);
  assert.is(store.summary().appliedIndex, 10);
  assert.is(currentName(), 'state-000002.db');
  assert.not.ok(stateFolderNames().includes('state-000001.db'));
  store.close();
  assert.ok(fs.existsSync(snapshotPath), 'the snapshot itself is copied, not moved');
});

test('snapshot is consistent while apply runs', async () => {
  const store = storeWith(20_000);
  const snapshotPath = path.join(dir, 'during-apply.db');
  const created = store.createSnapshot(snapshotPath);
  let next = 20_001;
  let done = false;
  void created.finally(() => (done = true));
  while (!done) {
    store.apply(numbered(next, next + 49, 2));
    next += 50;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const meta = await created;
  const live = store.summary();
  store.close();
  assert.ok(next > 20_001, 'apply ran while the copy was in progress');
  assert.is(meta.index, 20_000, 'the copy is the state when the snapshot started');
  assert.ok(meta.index < live.appliedIndex);

  const copyDir = path.join(dir, 'copy');
  const copy = MessageStore.open(copyDir);
  copy.restoreFrom(snapshotPath);
  const summary = copy.summary();
  assert.is(summary.appliedIndex, meta.index);
  assert.is(summary.appliedTerm, meta.term);
  assert.is(summary.messageCount, meta.index);
  assert.is(copy.read(0, 100_000).length, meta.index);
  copy.close();
});

test('closing during a snapshot fails it', async () => {
  const store = storeWith(20_000);
  const saved = store.saveSnapshot().then(
    () => 'saved',
    (err: Error) => err.message,
  );
  store.close();
  assert.match(await saved, /closed while it was copied/);
  assert.equal(listSnapshots(path.join(dir, 'snapshots')), []);
});

test('stray temp and partial files after a crash are ignored', () => {
  const store = storeWith(30);
  const before = store.summary();
  store.close();
  // A switch that crashed before renaming: a half-written new file and CURRENT.tmp.
  fs.writeFileSync(path.join(stateDir(), 'state-000002.db'), Buffer.alloc(3000, 9));
  fs.writeFileSync(path.join(stateDir(), 'CURRENT.tmp'), 'state-000002.db\n');

  const reopened = MessageStore.open(dir);
  assert.equal(reopened.summary(), before);
  assert.is(currentName(), 'state-000001.db');
  assert.not.ok(stateFolderNames().includes('state-000002.db'));
  assert.not.ok(stateFolderNames().includes('CURRENT.tmp'));
  reopened.close();
});

test('complete new file without CURRENT switch keeps the old one', async () => {
  const store = storeWith(30);
  await store.createSnapshot(path.join(stateDir(), 'state-000002.db'));
  store.apply(numbered(31, 40));
  const before = store.summary();
  store.close();

  const reopened = MessageStore.open(dir);
  assert.equal(reopened.summary(), before);
  assert.is(currentName(), 'state-000001.db');
  reopened.close();
});

test('damaged state file falls back to the snapshot', async () => {
  const store = storeWith(100);
  const snapshot = await store.saveSnapshot();
  const atSnapshot = store.summary();
  store.apply(numbered(101, 150));
  store.close();
  fs.writeFileSync(path.join(stateDir(), currentName()), Buffer.alloc(8192, 0x5a));

  const logger = recordingLogger();
  const reopened = MessageStore.open(dir, logger);
  assert.equal(reopened.summary(), atSnapshot);
  assert.equal(snapshot.meta, { index: 100, term: 1 });
  assert.ok(logger.warnings.includes('state database is damaged; recovering'));
  assert.ok(stateFolderNames().includes('state-000001.db.damaged'));
  assert.is(currentName(), 'state-000002.db');
  reopened.close();
});

test('truncated state file falls back to the snapshot', async () => {
  const store = storeWith(2000);
  await store.saveSnapshot();
  store.close();
  const filePath = path.join(stateDir(), currentName());
  fs.truncateSync(filePath, Math.floor(fs.statSync(filePath).size / 2));

  const reopened = MessageStore.open(dir, recordingLogger());
  assert.is(reopened.summary().appliedIndex, 2000);
  reopened.close();
});

test('damaged state file without snapshot starts empty', () => {
  const store = storeWith(10);
  store.close();
  fs.writeFileSync(path.join(stateDir(), currentName()), 'not a database');

  const reopened = MessageStore.open(dir, recordingLogger());
  assert.is(reopened.summary().appliedIndex, 0);
  assert.is(reopened.summary().messageCount, 0);
  reopened.close();
});

test('missing state file starts from the snapshot', async () => {
  const store = storeWith(10);
  await store.saveSnapshot();
  store.close();
  fs.rmSync(path.join(stateDir(), currentName()));

  const reopened = MessageStore.open(dir, recordingLogger());
  assert.is(reopened.summary().appliedIndex, 10);
  reopened.close();
});

test('snapshot that fails its SHA-256 is skipped', async () => {
  const store = storeWith(10);
  await store.saveSnapshot();
  store.apply(numbered(11, 20));
  const newest = await store.saveSnapshot();
  store.close();
  fs.appendFileSync(newest.path, 'tampered');
  fs.writeFileSync(path.join(stateDir(), currentName()), 'not a database');

  const logger = recordingLogger();
  const reopened = MessageStore.open(dir, logger);
  assert.is(reopened.summary().appliedIndex, 10);
  assert.ok(logger.warnings.includes('snapshot does not match its SHA-256 sidecar; skipping it'));
  reopened.close();
});

test('restore from a damaged file throws and keeps the live state', () => {
  const store = storeWith(10);
  const before = store.summary();
  const badPath = path.join(dir, 'bad.db');
  fs.writeFileSync(badPath, Buffer.alloc(4096, 1));
  assert.throws(() => store.restoreFrom(badPath));
  assert.equal(store.summary(), before);
  assert.equal(store.apply(numbered(11, 11)).length, 1);
  assert.is(currentName(), 'state-000001.db');
  assert.equal(stateFolderNames().filter((name) => name.endsWith('.db')), ['state-000001.db']);
  store.close();
});

test('syncToDisk returns the applied index', async () => {
  const fresh = MessageStore.open(dir);
  assert.equal(await fresh.syncToDisk(), { index: 0, term: 0 }, 'an empty store syncs');
  fresh.close();
  const store = storeWith(10);
  const synced = store.syncToDisk();
  store.apply(numbered(11, 20, 2));
  assert.equal(await synced, { index: 10, term: 1 }, 'applies after the call are not counted');
  assert.equal(await store.syncToDisk(), { index: 20, term: 2 });
  store.close();
  const reopened = MessageStore.open(dir);
  assert.is(reopened.summary().appliedIndex, 20);
  reopened.close();
});

test('syncToDisk rejects after a restore', async () => {
  const store = storeWith(10);
  const snapshotPath = path.join(dir, 'copy.db');
  await store.createSnapshot(snapshotPath);
  store.apply(numbered(11, 20));
  const synced = store.syncToDisk().then(
    () => 'synced',
    (err: Error) => err.message,
  );
  store.restoreFrom(snapshotPath);
  assert.match(await synced, /was replaced while it was fsync'd/);
  assert.is(store.summary().appliedIndex, 10);
  store.close();
});

test('saved snapshots keep the newest two', async () => {
  const store = MessageStore.open(dir);
  for (let round = 0; round < 4; round++) {
    store.apply(numbered(round * 10 + 1, round * 10 + 10));
    await store.saveSnapshot();
  }
  store.close();
  const indexes = listSnapshots(path.join(dir, 'snapshots')).map((s) => s.meta.index);
  assert.equal(indexes, [40, 30]);
  const leftovers = fs.readdirSync(path.join(dir, 'snapshots')).filter((n) => n.includes('partial'));
  assert.equal(leftovers, []);
});

test.run();
