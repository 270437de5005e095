// copyFileDurably(): the copy a snapshot is made of, written in chunks and
// fsync'd as it goes; makeDirectoriesSync(): mkdir -p for data folders.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileDurably, makeDirectoriesSync } from '../../src/storage/durable-fs';

let dir = '';

test.before.each(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-durable-fs-'));
});

test.after.each(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('copy of several chunks is identical', async () => {
  // 9 MiB and 3 bytes: more than one fsync interval, and a short last chunk.
  const data = crypto.randomBytes(9 * 1024 * 1024 + 3);
  const source = path.join(dir, 'source.db');
  const destination = path.join(dir, 'copy.db');
  fs.writeFileSync(source, data);
  await copyFileDurably(source, destination);
  assert.ok(fs.readFileSync(destination).equals(data));
});

test('copy replaces an existing file', async () => {
  const source = path.join(dir, 'source.db');
  const destination = path.join(dir, 'copy.db');
  fs.writeFileSync(source, 'new');
  fs.writeFileSync(destination, 'a longer old content');
  await copyFileDurably(source, destination);
  assert.is(fs.readFileSync(destination, 'utf8'), 'new');
});

test('copy of an empty file is empty', async () => {
  const source = path.join(dir, 'source.db');
  const destination = path.join(dir, 'copy.db');
  fs.writeFileSync(source, '');
  await copyFileDurably(source, destination);
  assert.is(fs.statSync(destination).size, 0);
});

test('copy of missing source fails', async () => {
  try {
    await copyFileDurably(path.join(dir, 'missing.db'), path.join(dir, 'copy.db'));
    assert.unreachable('the copy should fail');
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'ENOENT');
  }
});

test('makeDirectoriesSync creates missing parents', () => {
  const target = path.join(dir, 'a', 'b', 'c');
  assert.is(makeDirectoriesSync(target), path.join(dir, 'a'));
  assert.ok(fs.statSync(target).isDirectory());
  assert.is(makeDirectoriesSync(target), undefined, 'nothing is missing the second time');
});

test('makeDirectoriesSync rejects a file in the path', () => {
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, '');
  assert.throws(() => makeDirectoriesSync(file), (err: NodeJS.ErrnoException) => err.code === 'ENOTDIR');
  assert.throws(() => makeDirectoriesSync(path.join(file, 'sub')), (err: NodeJS.ErrnoException) => err.code === 'ENOTDIR');
});

test.run();
