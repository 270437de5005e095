// `replog experiment --minutes 0.1` as a real child process in a temp folder:
// the three phases run (about 20 s), it exits 0, and the report shows equal
// digests on every member and no acknowledged message missing, in particular
// on the member that was killed and restarted.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run as runExperimentCli } from '../../src/cli/experiment';
import { cliPath } from '../../src/cluster/local-cluster';

let dir: string;

test.before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-experiment-test-'));
});

test.after(() => {
  if (process.env['REPLOG_KEEP_TEST_DATA']) console.log(`kept test data in ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
});

test('invalid flags exit 2 naming the flag', async () => {
  const cases: [string[], RegExp][] = [
    [['--minutes', '0'], /invalid --minutes "0": expected a number above 0/],
    [['--minutes', 'soon'], /invalid --minutes "soon"/],
    [['--size', '4'], /invalid --size "4": expected 3, 5, 7 or 9/],
    [['--max-mode', 'turbo'], /invalid --max-mode "turbo": expected unary or stream/],
    [['--data', __filename], /invalid --data ".*": expected a new or empty folder/],
  ];
  for (const [argv, pattern] of cases) {
    let stderr = '';
    const sink = new Writable({ write: (chunk: Buffer, _e, done) => { stderr += chunk.toString(); done(); } });
    const code = await runExperimentCli(argv, { stdin: process.stdin, stdout: sink, stderr: sink });
    assert.is(code, 2, `exit 2 for ${argv.join(' ')}`);
    assert.match(stderr, pattern);
  }
});

test('ports in use: fails, no PASS', async () => {
  // A listener on the first member's gRPC port plays another cluster there.
  // The kernel picks a free port for it, and the cluster's range starts 2 below.
  const occupant = net.createServer();
  await new Promise<void>((resolve) => occupant.listen(0, '127.0.0.1', resolve));
  const occupied = (occupant.address() as net.AddressInfo).port;
  const basePort = occupied - 2;
  let output = '';
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => { output += chunk.toString(); done(); } });
  const argv = ['--minutes', '0.1', '--base-port', String(basePort), '--data', path.join(dir, 'busy'), '--report', path.join(dir, 'busy.md')];
  const code = await runExperimentCli(argv, { stdin: process.stdin, stdout: sink, stderr: sink });
  await new Promise((resolve) => occupant.close(resolve));
  assert.is.not(code, 0, output);
  // Short-lived sockets of earlier tests may hold other ports of the range,
  // so the occupied port may be anywhere in the list.
  const busyMatch = /((?:127\.0\.0\.1:\d+(?:, )?)+) already in use/.exec(output);
  assert.ok(busyMatch, output);
  assert.ok(busyMatch[1]!.split(', ').includes(`127.0.0.1:${occupied}`), output);
  assert.not.match(output, /PASS/);
  const report = fs.readFileSync(path.join(dir, 'busy.md'), 'utf8');
  assert.match(report, /^- The cluster did not start, so no client ran\.$/m);
  assert.not.match(report, /HAProxy is not installed/, 'no guess about HAProxy');
});

interface MemberRow {
  readonly id: string;
  readonly messages: number;
  readonly digest: string;
  readonly missing: number;
}

/** The member rows of one phase section of the report. */
function memberRows(section: string): MemberRow[] {
  const rows: MemberRow[] = [];
  const pattern = /^\| (n\d) \| \w+ \| \d+ \| (\d+) \| `([0-9a-f]{16})` \| [^|]+ \| [^|]+ \| (\d+) \| ok \|$/gm;
  for (const m of section.matchAll(pattern)) {
    rows.push({ id: m[1]!, messages: Number(m[2]), digest: m[3]!, missing: Number(m[4]) });
  }
  return rows;
}

test('--minutes 0.1: exit 0, equal digests, nothing missing', async () => {
  const reportPath = path.join(dir, 'report.md');
  const started = Date.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [cliPath, 'experiment', '--minutes', '0.1', '--data', path.join(dir, 'data'), '--report', reportPath],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), 70_000);
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ code: exitCode, stdout: out, stderr: err });
    });
  });
  assert.is(code, 0, `exit status\n${stdout}\n${stderr}`);
  assert.ok(Date.now() - started < 60_000, 'the scaled experiment takes well under a minute');
  const lines = stdout.trimEnd().split('\n');
  assert.is(lines[lines.length - 2], `report: ${reportPath}`);
  assert.match(lines[lines.length - 1]!, /^PASS: all 3 members identical after every phase .* 0 of \d+ acknowledged messages missing; missing on the restarted member n\d: 0$/);

  const report = fs.readFileSync(reportPath, 'utf8');
  assert.match(report, /^\*\*PASS\*\*/m);
  const sections = report.split(/^## Phase /m).slice(1);
  assert.is(sections.length, 3, 'one section per phase');
  let previousMessages = 0;
  for (const section of sections) {
    const title = section.split('\n')[0];
    const rows = memberRows(section);
    assert.is(rows.length, 3, `${title}: a row per member, each "ok"`);
    assert.is(new Set(rows.map((r) => r.digest)).size, 1, `${title}: equal digests`);
    assert.is(new Set(rows.map((r) => r.messages)).size, 1, `${title}: equal message counts`);
    assert.ok(rows.every((r) => r.missing === 0), `${title}: no acknowledged message missing`);
    assert.ok(rows[0]!.messages > previousMessages, `${title}: messages were added`);
    previousMessages = rows[0]!.messages;
    assert.match(section, /^- Digests equal on every member: \*\*yes\*\*\.$/m);
  }
  for (const section of sections.slice(1)) {
    assert.match(section, /^- Missing on the restarted member \(n\d\): \*\*0\*\*\.$/m);
  }
  assert.match(sections[1]!, /n\d killed \(SIGKILL\)/);
  assert.match(sections[1]!, /n\d restarted; \d+ appends acknowledged while it was down/);
  const summary = report.slice(report.indexOf('## Summary'), report.indexOf('## Phase 1'));
  assert.is((summary.match(/\| yes \| 0 \|/g) ?? []).length, 3, 'summary: every phase identical with 0 missing');
});

test.run();
