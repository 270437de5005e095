import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  fileSha256,
  fileSha256Sync,
  latestSnapshot,
  listSnapshots,
  pruneSnapshots,
  pruneSnapshotsBelow,
  removeIncompleteSnapshots,
  snapshotChunks,
  SnapshotReceiver,
} from '../../src/storage/snapshot-files';

let dir = '';
let snapshotsDir = '';

test.before.each(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-snapshot-files-'));
  snapshotsDir = path.join(dir, 'snapshots');
});

test.after.each(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Receives `data` in chunks of `chunkBytes` as snapshot index/term and returns the final path. */
function receive(index: number, term: number, data: Buffer, chunkBytes = 1000): string {
  const receiver = new SnapshotReceiver(snapshotsDir, { index, term }, sha256Hex(data), data.length);
  for (let offset = 0; offset < data.length; offset += chunkBytes) {
    receiver.write(data.subarray(offset, offset + chunkBytes));
  }
  return receiver.finish();
}

function folderNames(): string[] {
  return fs.readdirSync(snapshotsDir).sort();
}

test('chunks of a file reassemble through the receiver', async () => {
  const source = path.join(dir, 'source.db');
  const data = randomBytes(10_000);
  fs.writeFileSync(source, data);
  const sha256 = await fileSha256(source);
  assert.is(sha256, sha256Hex(data));
  assert.is(fileSha256Sync(source), sha256);

  const receiver = new SnapshotReceiver(snapshotsDir, { index: 7, term: 2 }, sha256, data.length);
  const sizes: number[] = [];
  for await (const chunk of snapshotChunks(source, 4096)) {
    sizes.push(chunk.byteLength);
    receiver.write(chunk);
  }
  const finalPath = receiver.finish();
  assert.equal(sizes, [4096, 4096, 1808]);
  assert.is(finalPath, path.join(snapshotsDir, 'snapshot-7-2.db'));
  assert.equal(fs.readFileSync(finalPath), data);
  assert.equal(folderNames(), ['snapshot-7-2.db', 'snapshot-7-2.db.sha256']);
  assert.equal(latestSnapshot(snapshotsDir), {
    meta: { index: 7, term: 2 },
    path: finalPath,
    sha256,
    bytes: data.length,
  });
});

test('sidecar uses the sha256sum format', () => {
  const data = Buffer.from('snapshot bytes');
  const finalPath = receive(3, 1, data);
  const sidecar = fs.readFileSync(`${finalPath}.sha256`, 'utf8');
  assert.is(sidecar, `${sha256Hex(data)}  snapshot-3-1.db\n`);
});

test('receiver rejects a wrong SHA-256', () => {
  const receiver = new SnapshotReceiver(snapshotsDir, { index: 1, term: 1 }, 'ab'.repeat(32), 4);
  receiver.write(Buffer.from('data'));
  assert.throws(() => receiver.finish(), /has SHA-256 [0-9a-f]{64}, expected (ab){32}/);
  assert.equal(folderNames(), []);
});

test('receiver rejects more bytes than expected', () => {
  const data = Buffer.from('0123456789');
  const receiver = new SnapshotReceiver(snapshotsDir, { index: 1, term: 1 }, sha256Hex(data), 5);
  assert.throws(() => receiver.write(data), /exceeds the expected 5 bytes/);
  assert.equal(folderNames(), []);
  assert.throws(() => receiver.write(data), /already finished or aborted/);
});

test('receiver rejects fewer bytes than expected', () => {
  const data = Buffer.from('0123456789');
  const receiver = new SnapshotReceiver(snapshotsDir, { index: 1, term: 1 }, sha256Hex(data), 10);
  receiver.write(data.subarray(0, 4));
  assert.throws(() => receiver.finish(), /has 4 bytes, expected 10/);
  assert.equal(folderNames(), []);
});

test('receiver validates its arguments', () => {
  const meta = { index: 1, term: 1 };
  assert.throws(() => new SnapshotReceiver(snapshotsDir, meta, 'xyz', 1), /64 hex digits/);
  assert.throws(() => new SnapshotReceiver(snapshotsDir, meta, 'a'.repeat(64), -1), /non-negative/);
});

test('abort deletes the partial file', () => {
  const receiver = new SnapshotReceiver(snapshotsDir, { index: 1, term: 1 }, 'a'.repeat(64), 100);
  receiver.write(Buffer.alloc(10));
  assert.ok(fs.existsSync(receiver.partialPath));
  receiver.abort();
  receiver.abort();
  assert.equal(folderNames(), []);
});

test('finished receivers keep the newest two snapshots', () => {
  receive(10, 1, Buffer.from('ten'));
  receive(20, 1, Buffer.from('twenty'));
  receive(30, 2, Buffer.from('thirty'));
  assert.equal(
    listSnapshots(snapshotsDir).map((s) => s.meta.index),
    [30, 20],
  );
  assert.equal(folderNames(), [
    'snapshot-20-1.db',
    'snapshot-20-1.db.sha256',
    'snapshot-30-2.db',
    'snapshot-30-2.db.sha256',
  ]);
});

test('older received snapshot is not pruned at once', () => {
  receive(20, 1, Buffer.from('twenty'));
  receive(30, 1, Buffer.from('thirty'));
  const older = receive(10, 1, Buffer.from('ten'));
  assert.ok(fs.existsSync(older));
  assert.equal(pruneSnapshots(snapshotsDir), [older]);
});

test('pruning below an index', () => {
  // In this order, receiving keeps all three.
  const twenty = receive(20, 1, Buffer.from('twenty'));
  receive(30, 2, Buffer.from('thirty'));
  const ten = receive(10, 1, Buffer.from('ten'));
  assert.equal(pruneSnapshotsBelow(snapshotsDir, 30, twenty), [ten]);
  assert.equal(listSnapshots(snapshotsDir).map((s) => s.meta.index), [30, 20]);
  assert.equal(pruneSnapshotsBelow(snapshotsDir, 30), [twenty]);
  assert.ok(!fs.existsSync(`${twenty}.sha256`), 'the sidecar goes too');
});

test('snapshots without sidecar are ignored and leftovers removed', () => {
  receive(5, 1, Buffer.from('five'));
  fs.writeFileSync(path.join(snapshotsDir, 'snapshot-9-1.db'), 'no sidecar yet');
  fs.writeFileSync(path.join(snapshotsDir, 'snapshot-8-1.db.sha256'), `${'c'.repeat(64)}  x\n`);
  fs.writeFileSync(path.join(snapshotsDir, 'snapshot-9-1.db.abc.partial'), 'partial');
  fs.writeFileSync(path.join(snapshotsDir, 'creating.db.abc.partial-journal'), 'journal');
  assert.is(latestSnapshot(snapshotsDir)?.meta.index, 5);

  const removed = removeIncompleteSnapshots(snapshotsDir).sort();
  assert.equal(removed, [
    'creating.db.abc.partial-journal',
    'snapshot-8-1.db.sha256',
    'snapshot-9-1.db.abc.partial',
  ]);
  assert.ok(fs.existsSync(path.join(snapshotsDir, 'snapshot-9-1.db')));
});

test('missing snapshots folder means no snapshot', () => {
  assert.is(latestSnapshot(snapshotsDir), null);
  assert.equal(removeIncompleteSnapshots(snapshotsDir), []);
});

test('chunk size must be positive', async () => {
  const source = path.join(dir, 'source.db');
  fs.writeFileSync(source, 'x');
  try {
    for await (const chunk of snapshotChunks(source, 0)) assert.unreachable(String(chunk));
    assert.unreachable('no error');
  } catch (err) {
    assert.match((err as Error).message, /chunkBytes must be a positive integer/);
  }
});

test.run();
