// `replog verify` against a real cluster: members agree after appends (exit 0),
// also under load on the common applied prefix; a member whose state database
// was tampered with (one valueset changed while it was stopped) makes verify
// exit 1 and name the first differing index with both values.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run as runVerify } from '../../src/cli/verify';
import { cliPath } from '../../src/cluster/local-cluster';
import { appendMany, connect, startCluster, waitForLeader, waitInSync, type TestCluster } from './harness';

let tc: TestCluster;

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `replog <args>` as a child process, the way an operator would. */
function runCli(args: readonly string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function targetFlags(): string[] {
  const members = tc.cluster.members;
  return ['--target', members.map((m) => m.grpc).join(','), '--http', members.map((m) => m.http).join(',')];
}

test.before(async () => {
  tc = await startCluster();
  const client = connect(tc.target);
  const load = await appendMany(client, 'verify-', 2000, 32);
  client.close();
  assert.is(load.failed, 0);
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), 2000);
});

test.after(async () => {
  await tc.close();
});

test('invalid flags exit 2 with the flag and the expected form', async () => {
  const cases: [string[], RegExp][] = [
    [[], /missing --target: expected GRPC_HOST:PORT/],
    [['--target', '127.0.0.1:1,127.0.0.1:2'], /missing --http: expected HTTP_HOST:PORT/],
    [['--target', '127.0.0.1:1,127.0.0.1:2', '--http', '127.0.0.1:3'], /invalid --http: 1 address\(es\) for 2 --target/],
    [['--target', 'nope', '--http', '127.0.0.1:3'], /invalid --target "nope": expected HOST:PORT/],
    [['--members', 'n1=127.0.0.1:1'], /invalid --members entry "n1=127.0.0.1:1": expected ID=GRPC_HOST:PORT=HTTP_HOST:PORT/],
    [['--members', 'n1=127.0.0.1:1=127.0.0.1:2', '--target', '127.0.0.1:1'], /either --members or both --target and --http/],
    [['--members', 'n1=127.0.0.1:1=127.0.0.1:2', '--retries', 'x'], /invalid --retries "x": expected an integer from 0 to 100/],
  ];
  for (const [argv, pattern] of cases) {
    let stderr = '';
    const sink = new Writable({ write: (chunk: Buffer, _e, done) => { stderr += chunk.toString(); done(); } });
    const code = await runVerify(argv, { stdin: process.stdin, stdout: sink, stderr: sink });
    assert.is(code, 2, `exit 2 for ${argv.join(' ')}`);
    assert.match(stderr, pattern);
  }
});

test('only down members: compared no indexes, exit 1', async () => {
  const text = await runCli(['verify', '--target', '127.0.0.1:1', '--http', '127.0.0.1:2', '--retries', '0']);
  assert.is(text.code, 1, text.stdout + text.stderr);
  assert.match(text.stdout, /^compared no indexes across 0 of 1 member/m);
  assert.not.match(text.stdout, /1\.\.0/);
});

test('down member left out of comparison', async () => {
  const members = tc.cluster.members.map((m) => `${m.id}=${m.grpc}=${m.http}`);
  const text = await runCli(['verify', '--members', [...members, 'n4=127.0.0.1:1=127.0.0.1:2'].join(','), '--retries', '0']);
  assert.is(text.code, 1, text.stdout + text.stderr);
  assert.match(text.stdout, /^n4\s.*\sDOWN$/m);
  assert.match(text.stdout, /^compared indexes 1\.\.\d+ across 3 of 4 members \(quiescent/m);
});

test('one member: singular wording, http:// address', async () => {
  const member = tc.cluster.members[0]!;
  const text = await runCli(['verify', '--target', member.grpc, '--http', `http://${member.http}/status`]);
  assert.is(text.code, 0, text.stdout + text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  assert.match(lines[lines.length - 1]!, /^OK: the only member agrees with its \/status: 2000 messages up to index \d+, digest [0-9a-f]{16}$/);
  assert.match(text.stdout, /^compared indexes 1\.\.\d+ across 1 member \(quiescent/m);
});

test('members that agree: exit 0, table and verdict; --members and --json', async () => {
  const text = await runCli(['verify', ...targetFlags()]);
  assert.is(text.code, 0, text.stdout + text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  assert.match(lines[lines.length - 1]!, /^OK: all 3 members agree: 2000 messages up to index \d+, digest [0-9a-f]{16}$/);
  for (const m of tc.cluster.members) assert.match(text.stdout, new RegExp(`^n\\d\\s+${m.grpc.replace(/\./g, '\\.')}\\s.*\\sok$`, 'm'));

  const members = tc.cluster.members.map((m) => `${m.id}=${m.grpc}=${m.http}`).join(',');
  const json = await runCli(['verify', '--members', members, '--json']);
  assert.is(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout) as {
    ok: boolean;
    quiescent: boolean;
    members: { label: string; checkedCount: number; digestMatches: boolean; checkedDigest: string; before: { digest: string } }[];
  };
  assert.ok(result.ok && result.quiescent);
  assert.equal(result.members.map((m) => m.label), ['n1', 'n2', 'n3']);
  for (const m of result.members) {
    assert.is(m.checkedCount, 2000);
    assert.ok(m.digestMatches);
    assert.is(m.checkedDigest, m.before.digest);
  }
});

test('under load: the common applied prefix agrees (--allow-busy)', async () => {
  const client = connect(tc.target);
  const load = appendMany(client, 'busy-', 1_000_000, 32, Date.now() + 2500);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const out = await runCli(['verify', ...targetFlags(), '--retries', '0', '--allow-busy', '--json']);
  await load;
  client.close();
  assert.is(out.code, 0, out.stdout + out.stderr);
  const result = JSON.parse(out.stdout) as { ok: boolean; comparedUpTo: number; differingIndexes: number; verdict: string };
  assert.ok(result.ok);
  assert.is(result.differingIndexes, 0);
  assert.ok(result.comparedUpTo > 2100, 'the prefix includes messages appended under load');
  assert.match(result.verdict, /^OK/);
});

test('a tampered state database: exit 1, names the first differing index and both values', async () => {
  const ids = tc.cluster.members.map((m) => m.id);
  await waitInSync(tc.cluster, ids);
  const leader = await waitForLeader(tc.cluster);
  const victim = tc.cluster.members.find((m) => m.id !== leader.id)!;
  assert.is(await tc.cluster.stopMember(victim.id, 'SIGTERM'), 0);

  const stateDir = path.join(victim.dataDir, 'state');
  const current = fs.readFileSync(path.join(stateDir, 'CURRENT'), 'utf8').trim();
  const db = new Database(path.join(stateDir, current));
  const row = db.prepare('SELECT idx, valueset FROM messages ORDER BY idx LIMIT 1 OFFSET 700').get() as { idx: number; valueset: string };
  db.prepare('UPDATE messages SET valueset = ? WHERE idx = ?').run('tampered-valueset', row.idx);
  db.close();

  tc.cluster.startMember(victim.id);
  await waitInSync(tc.cluster, ids);
  const out = await runCli(['verify', ...targetFlags()]);
  assert.is(out.code, 1, out.stdout + out.stderr);
  assert.match(out.stdout, new RegExp(`^first difference at index ${row.idx}:$`, 'm'));
  assert.match(out.stdout, new RegExp(`^  ${victim.id}: "tampered-valueset"$`, 'm'));
  assert.match(out.stdout, new RegExp(`^  ${leader.id}: ${JSON.stringify(row.valueset)}$`, 'm'));
  assert.match(out.stdout, new RegExp(`^problem: ${victim.id}: digest of the messages read up to index \\d+ is [0-9a-f]+, /status says`, 'm'));
  const lines = out.stdout.trimEnd().split('\n');
  assert.match(lines[lines.length - 1]!, new RegExp(`^FAIL: members differ; first difference at index ${row.idx} `));
});

test.run();
