// The membership record of a data folder: written on first start, checked on
// every later one, so that a member never runs on data of another member or of
// a cluster of other members, which could commit over acknowledged entries.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkMembership, membershipFileName, MembershipMismatchError } from '../../src/node/membership-file';
import { raftLogFileName } from '../../src/storage/raft-log';

const mainScript = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** Folders that tempDir() created, removed after the last test. */
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-membership-'));
  tempDirs.push(dir);
  return dir;
}

test.after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

test('first start records, later starts match', () => {
  const dir = path.join(tempDir(), 'n1');
  assert.is(checkMembership(dir, 'n1', ['n3', 'n1', 'n2']), 'new');
  const recorded = JSON.parse(fs.readFileSync(path.join(dir, membershipFileName), 'utf8'));
  assert.equal(recorded, { id: 'n1', members: ['n1', 'n2', 'n3'] });
  assert.is(checkMembership(dir, 'n1', ['n1', 'n2', 'n3']), 'matches', 'the order of --peers does not matter');
});

test('other members or another id are refused', () => {
  const dir = tempDir();
  checkMembership(dir, 'n1', ['n1', 'n2', 'n3']);
  assert.throws(() => checkMembership(dir, 'n1', ['n1']), (err: Error) => err instanceof MembershipMismatchError && /cluster of n1,n2,n3/.test(err.message));
  assert.throws(() => checkMembership(dir, 'n1', ['n1', 'n2', 'n3', 'n4', 'n5']), (err: Error) => err instanceof MembershipMismatchError);
  assert.throws(() => checkMembership(dir, 'n2', ['n1', 'n2', 'n3']), /belongs to member n1/);
});

test('an older folder gets its record', () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, raftLogFileName), '');
  assert.is(checkMembership(dir, 'n2', ['n1', 'n2', 'n3']), 'recorded');
  assert.is(checkMembership(dir, 'n2', ['n1', 'n2', 'n3']), 'matches');
});

test('a deleted Raft log is rejected', () => {
  const dir = tempDir();
  checkMembership(dir, 'n1', ['n1', 'n2', 'n3']);
  fs.mkdirSync(path.join(dir, 'state'));
  assert.throws(() => checkMembership(dir, 'n1', ['n1', 'n2', 'n3']), /has a state folder but no raft\.db/);
  fs.writeFileSync(path.join(dir, raftLogFileName), '');
  assert.is(checkMembership(dir, 'n1', ['n1', 'n2', 'n3']), 'matches');
});

test('a damaged record is an error', () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, membershipFileName), '{"id": 3}');
  assert.throws(() => checkMembership(dir, 'n1', ['n1']), /invalid .*membership\.json: expected/);
});

test('replog node refuses a folder of another cluster', () => {
  const dir = tempDir();
  checkMembership(dir, 'n1', ['n1', 'n2', 'n3']);
  // The check runs before the member listens, so no address here is ever bound.
  const result = spawnSync(
    process.execPath,
    [mainScript, 'node', '--id', 'n1', '--data', dir, '--grpc', '127.0.0.1:1', '--http', '127.0.0.1:2', '--peers', 'n1=127.0.0.1:1'],
    { encoding: 'utf8', timeout: 20_000 },
  );
  assert.is(result.status, 1, result.stderr);
  assert.match(result.stderr, /belongs to member n1 of a cluster of n1,n2,n3/);
  assert.match(result.stderr, /cannot change a cluster's members/);
});

test.run();
