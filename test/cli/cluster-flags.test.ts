// Flag errors and help of `replog cluster`, run as real processes of the
// built CLI. No case starts a member.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkMembership } from '../../src/node/membership-file';

const mainScript = path.join(__dirname, '../../src/cli/main.js');
const helpHint = 'Run "replog cluster --help" for the flags.';

function runCluster(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [mainScript, 'cluster', ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Each case: arguments and the first line of the error message. */
const invalidCases: readonly [string[], string][] = [
  [['--size', '4'], 'invalid --size "4": expected an odd number from 1 to 9'],
  [['--size', '11'], 'invalid --size "11": expected an odd number from 1 to 9'],
  [['--size', 'x'], 'invalid --size "x": expected an odd number from 1 to 9'],
  [['--size', '-1'], 'invalid --size "-1": expected an odd number from 1 to 9'],
  [['--snapshot-threshold-bytes', '1000'], 'invalid --snapshot-threshold-bytes "1000": expected an integer from 65536 to 1099511627776'],
  [['--base-port', 'x'], 'invalid --base-port "x": expected an integer from 1024 to 65000'],
  [['--colour'], 'unknown flag --colour'],
];

for (const [args, expected] of invalidCases) {
  test(`cluster ${args.join(' ')} exits 2`, () => {
    const result = runCluster(args);
    assert.is(result.status, 2, result.stderr);
    const lines = result.stderr.trimEnd().split('\n');
    assert.ok(lines[0]?.startsWith(`replog cluster: ${expected}`), result.stderr);
    assert.is(lines[1], helpHint);
    assert.is(lines.length, 2, result.stderr);
    assert.is(result.stdout, '');
  });
}

test('cluster of another size is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-cluster-size-'));
  checkMembership(path.join(dir, 'n1'), 'n1', ['n1', 'n2', 'n3']);
  const result = runCluster(['--data', dir, '--size', '1']);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.is(result.status, 1, result.stderr);
  assert.match(result.stderr, /contains a cluster of 3 members \(n1,n2,n3\), so it cannot run with --size 1: start it with --size 3/);
});

test('top-level help states cluster sizes', () => {
  const result = spawnSync(process.execPath, [mainScript, '--help'], { encoding: 'utf8', timeout: 20_000 });
  assert.is(result.status, 0, result.stderr);
  const row = result.stdout.split('\n').find((line) => line.startsWith('  cluster '));
  assert.ok(row?.includes('1 to 9 members (odd --size)'), row);
  assert.ok(result.stdout.includes('--size N                      members, an odd number from 1 to 9 (default 3)'), result.stdout);
});

test('version flag prints package version', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  const result = spawnSync(process.execPath, [mainScript, '--version'], { encoding: 'utf8', timeout: 20_000 });
  assert.is(result.status, 0, result.stderr);
  assert.is(result.stdout, `replog ${manifest.version}\n`);
});

test.run();
