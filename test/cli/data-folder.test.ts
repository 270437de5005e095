// The data folder checks and flag errors of `replog node` and `replog cluster`,
// run as real processes of the built CLI.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePorts } from '../../src/cluster/local-cluster';

const mainScript = path.join(__dirname, '../../src/cli/main.js');
let dir = '';

test.before.each(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-data-folder-'));
});

test.after.each(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function runCli(args: string[]): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [mainScript, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stderr: result.stderr };
}

test('node names --data when creating it fails', async () => {
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  const [grpcPort, httpPort] = await freePorts(2);
  const grpc = `127.0.0.1:${grpcPort}`;
  const result = runCli(['node', '--id', 'n1', '--data', path.join(file, 'n1'), '--grpc', grpc, '--http', `127.0.0.1:${httpPort}`, '--peers', `n1=${grpc}`]);
  assert.is(result.status, 1);
  assert.match(result.stderr, `cannot use --data ${path.join(file, 'n1')}`);
  assert.match(result.stderr, /ENOTDIR/);
});

test('node names --data the kernel rejects', async () => {
  // mkdir in /proc fails with ENOENT under an existing parent, where Node 20's
  // recursive mkdirSync loops for ever.
  const dataDir = '/proc/replog-data-folder-test';
  const [grpcPort, httpPort] = await freePorts(2);
  const grpc = `127.0.0.1:${grpcPort}`;
  const result = runCli(['node', '--id', 'n1', '--data', dataDir, '--grpc', grpc, '--http', `127.0.0.1:${httpPort}`, '--peers', `n1=${grpc}`]);
  assert.is(result.status, 1, result.stderr);
  assert.match(result.stderr, `cannot use --data ${dataDir}`);
});

test('a failed first start leaves no record', async () => {
  const dataDir = path.join(dir, 'n1');
  // A snapshot file put there by hand, as the error for a state gap suggests, stays.
  fs.mkdirSync(path.join(dataDir, 'snapshots'), { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'snapshots', 'kept.txt'), 'kept');
  const [grpcPort, httpPort, peerPort] = await freePorts(3);
  const grpc = `127.0.0.1:${grpcPort}`;
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(httpPort, '127.0.0.1', resolve));
  try {
    const failed = runCli(['node', '--id', 'n1', '--data', dataDir, '--grpc', grpc, '--http', `127.0.0.1:${httpPort}`, '--peers', `n1=${grpc}`]);
    assert.is(failed.status, 1, failed.stderr);
    assert.match(failed.stderr, `cannot listen on --http 127.0.0.1:${httpPort}`);
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
  assert.equal(fs.readdirSync(dataDir), ['snapshots']);
  assert.equal(fs.readdirSync(path.join(dataDir, 'snapshots')), ['kept.txt']);
  // A retry with other --peers is not refused as another cluster's folder.
  const peers = `n1=${grpc},n2=127.0.0.1:${peerPort}`;
  const retried = spawnSync(
    process.execPath,
    [mainScript, 'node', '--id', 'n1', '--data', dataDir, '--grpc', grpc, '--http', `127.0.0.1:${httpPort}`, '--peers', peers],
    { encoding: 'utf8', timeout: 5_000, killSignal: 'SIGINT' },
  );
  assert.not.match(retried.stderr, /belongs to member/);
  assert.match(retried.stdout, /member started/);
});

test('cluster rejects a data folder in use', async () => {
  // The PID of this test process, which is alive, plays the running cluster.
  fs.writeFileSync(path.join(dir, 'cluster.pid'), `${process.pid}\n`);
  const [basePort] = await freePorts(1);
  const result = runCli(['cluster', '--data', dir, '--base-port', String(basePort)]);
  assert.is(result.status, 1);
  assert.match(result.stderr, `the data folder ${dir} is in use by the cluster with PID ${process.pid}`);
  assert.equal(fs.readdirSync(dir), ['cluster.pid']);
});

test('cluster names --data when creating it fails', () => {
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  const dataDir = path.join(file, 'data');
  // The command fails before it binds any port, so a fixed --base-port is safe.
  const result = runCli(['cluster', '--data', dataDir, '--base-port', '47100']);
  assert.is(result.status, 1);
  assert.is(
    result.stderr,
    `replog cluster: cannot create --data ${dataDir}: not a directory (ENOTDIR); ` +
      'pick a folder this user can create and write\n',
  );
});

test('node flag error points to --help', () => {
  const result = runCli(['node', '--id', 'n1']);
  assert.is(result.status, 2);
  assert.match(result.stderr, 'replog node: missing --grpc');
  assert.match(result.stderr, 'Run "replog node --help" for the flags.');
});

test('node flag errors name the cause', () => {
  // Each case fails before the member binds a port, so fixed ports are safe.
  const member = ['--id', 'n1', '--data', path.join(dir, 'n1'), '--grpc', '127.0.0.1:47101', '--http', '127.0.0.1:47102', '--peers', 'n1=127.0.0.1:47101'];
  const cases: readonly [string[], string][] = [
    [['--id', ''], 'replog node: invalid --id "": the id is empty; expected 1 to 32 characters from a-z, 0-9 and "-"'],
    [['--grpc', '127.0.0.1:0'], 'replog node: invalid --grpc "127.0.0.1:0": expected HOST:PORT with a port from 1 to 65535'],
    [['--heartbeat-interval-ms', '5000'], 'replog node: invalid --heartbeat-interval-ms 5000: must be at most a third of --election-timeout-ms (1000, the default)'],
  ];
  for (const [flags, expected] of cases) {
    const result = runCli(['node', ...member, ...flags]);
    assert.is(result.status, 2, result.stderr);
    assert.ok(result.stderr.startsWith(expected), result.stderr);
    assert.not.ok(fs.existsSync(path.join(dir, 'n1')), 'no data folder is created');
  }
});

test.run();
