// Members that `replog cluster` starts stop when the cluster process ends,
// even when it is killed with SIGKILL and cannot stop them itself, and
// Ctrl-C stops them with a closing line, also when pressed twice. The
// cluster process runs on when its members or HAProxy stop, and reports a
// stopped HAProxy with the command that restarts it.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePorts, haproxyPidFileName, processExists } from '../../src/cluster/local-cluster';

const mainScript = path.join(__dirname, '../../src/cli/main.js');
/** How long the member gets to start, and to stop after the cluster process died. */
const waitMs = 15_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Returns the PIDs of processes that have `text` as one of their command-line arguments. */
function pidsWithArgument(text: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline.includes(text)) pids.push(Number(entry));
    } catch {
      // The process ended while the folder was read.
    }
  }
  return pids;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${waitMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

test('members stop with killed cluster', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-cluster-lifetime-'));
  const [basePort] = await freePorts(1);
  // A PATH without haproxy, so that only member processes are started.
  const env = { ...process.env, PATH: path.dirname(process.execPath) };
  const cluster = spawn(process.execPath, [mainScript, 'cluster', '--size', '1', '--data', dir, '--base-port', String(basePort)], { env, stdio: 'ignore' });
  const memberData = path.join(dir, 'n1');
  try {
    const logFile = path.join(dir, 'n1.log');
    await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('member started'), 'the member to start');
    const [memberPid] = pidsWithArgument(memberData);
    assert.ok(memberPid !== undefined, 'the member process is found');
    cluster.kill('SIGKILL');
    await waitFor(() => !processExists(memberPid!), `member ${memberPid} to exit`);
    assert.match(fs.readFileSync(logFile, 'utf8'), 'stdin closed, stopping the member');
  } finally {
    cluster.kill('SIGKILL');
    for (const pid of pidsWithArgument(memberData)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('second SIGINT waits for stop', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-cluster-lifetime-'));
  const [basePort] = await freePorts(1);
  const env = { ...process.env, PATH: path.dirname(process.execPath) };
  const cluster = spawn(process.execPath, [mainScript, 'cluster', '--size', '1', '--data', dir, '--base-port', String(basePort)], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  let secondSent = false;
  cluster.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    // The second SIGINT goes out as soon as the stop begins, while members still run.
    if (!secondSent && stdout.includes('stopping members and HAProxy')) {
      secondSent = true;
      cluster.kill('SIGINT');
    }
  });
  const exited = new Promise<number | null>((resolve) => cluster.once('exit', (code) => resolve(code)));
  try {
    const logFile = path.join(dir, 'n1.log');
    await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('member started'), 'the member to start');
    cluster.kill('SIGINT');
    assert.is(await exited, 0);
    assert.match(stdout, 'still stopping members and HAProxy');
    assert.ok(stdout.trimEnd().endsWith(`stopped; data and logs are in ${dir}`), stdout);
    assert.not.ok(fs.existsSync(path.join(dir, 'cluster.pid')), 'the data folder is no longer marked as in use');
    assert.equal(pidsWithArgument(path.join(dir, 'n1')), [], 'no member process is left');
  } finally {
    cluster.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster outlives its stopped member', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-cluster-lifetime-'));
  const [basePort] = await freePorts(1);
  const env = { ...process.env, PATH: path.dirname(process.execPath) };
  const cluster = spawn(process.execPath, [mainScript, 'cluster', '--size', '1', '--data', dir, '--base-port', String(basePort)], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  cluster.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => cluster.once('exit', (code) => resolve(code)));
  try {
    const logFile = path.join(dir, 'n1.log');
    await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('member started'), 'the member to start');
    for (const pid of pidsWithArgument(path.join(dir, 'n1'))) process.kill(pid, 'SIGKILL');
    await waitFor(() => stdout.includes('n1 stopped (signal SIGKILL)'), 'the report of the stopped member');
    await sleep(1_000);
    assert.is(cluster.exitCode, null, 'the cluster process still runs with no member left');
    assert.ok(fs.existsSync(path.join(dir, 'cluster.pid')), 'the data folder is still marked as in use');
    cluster.kill('SIGINT');
    assert.is(await exited, 0);
    assert.not.ok(fs.existsSync(path.join(dir, 'cluster.pid')), 'Ctrl-C clears the mark');
  } finally {
    cluster.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('stopped HAProxy is reported', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-cluster-lifetime-'));
  const [basePort] = await freePorts(1);
  const cluster = spawn(process.execPath, [mainScript, 'cluster', '--size', '1', '--data', dir, '--base-port', String(basePort)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  cluster.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const cfgPath = path.join(dir, 'haproxy.cfg');
  try {
    await waitFor(() => pidsWithArgument(cfgPath).length > 0, 'HAProxy to start');
    for (const pid of pidsWithArgument(cfgPath)) process.kill(pid, 'SIGKILL');
    await waitFor(() => stdout.includes('HAProxy stopped (signal SIGKILL)'), 'the report of the stopped HAProxy');
    assert.match(stdout, `  haproxy -f ${cfgPath} -db >> ${path.join(dir, 'haproxy.log')} 2>&1 &`);
  } finally {
    cluster.kill('SIGINT');
    await waitFor(() => cluster.exitCode !== null || cluster.signalCode !== null, 'the cluster to stop');
    for (const pid of pidsWithArgument(cfgPath)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A `replog cluster` of one member behind HAProxy, started in a new temp folder. */
interface ClusterRun {
  readonly dir: string;
  readonly cluster: ReturnType<typeof spawn>;
  readonly cfgPath: string;
  readonly pidPath: string;
  readonly basePort: number;
}

/** Starts `replog cluster --size 1` in a new temp folder, with HAProxy when installed. */
async function startClusterWithHaproxy(): Promise<ClusterRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-cluster-lifetime-'));
  const [basePort] = await freePorts(1);
  const cluster = spawn(process.execPath, [mainScript, 'cluster', '--size', '1', '--data', dir, '--base-port', String(basePort)], { stdio: 'ignore' });
  return { dir, cluster, cfgPath: path.join(dir, 'haproxy.cfg'), pidPath: path.join(dir, haproxyPidFileName), basePort: basePort! };
}

/** Kills the cluster process and any HAProxy of its folder, then removes the folder. */
function removeCluster(run: ClusterRun): void {
  run.cluster.kill('SIGKILL');
  for (const pid of pidsWithArgument(run.cfgPath)) process.kill(pid, 'SIGKILL');
  fs.rmSync(run.dir, { recursive: true, force: true });
}

test('HAProxy pid file after kill -9', async () => {
  // The README stops the HAProxy of a killed cluster with `kill $(cat DIR/haproxy.pid)`.
  const run = await startClusterWithHaproxy();
  try {
    await waitFor(() => pidsWithArgument(run.cfgPath).length > 0, 'HAProxy to start');
    const [haproxyPid] = pidsWithArgument(run.cfgPath);
    assert.is(fs.readFileSync(run.pidPath, 'utf8'), `${haproxyPid}\n`);
    run.cluster.kill('SIGKILL');
    await sleep(500);
    assert.ok(processExists(haproxyPid!), 'HAProxy outlives a cluster killed with SIGKILL');
    // A new cluster on the folder finds its port taken and names the leftover HAProxy.
    const again = spawnSync(process.execPath, [mainScript, 'cluster', '--size', '1', '--data', run.dir, '--base-port', String(run.basePort)], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.is(again.status, 1, again.stderr);
    assert.match(again.stderr, `still runs (PID ${haproxyPid}, from ${run.pidPath}); stop it with kill ${haproxyPid}`);
    process.kill(Number(fs.readFileSync(run.pidPath, 'utf8')), 'SIGTERM');
    await waitFor(() => pidsWithArgument(run.cfgPath).length === 0, 'HAProxy to stop');
  } finally {
    removeCluster(run);
  }
});

test('HAProxy pid file removed on stop', async () => {
  const run = await startClusterWithHaproxy();
  const exited = new Promise<number | null>((resolve) => run.cluster.once('exit', (code) => resolve(code)));
  try {
    // The member's start comes after HAProxy's and after the cluster's signal handlers are set.
    const logFile = path.join(run.dir, 'n1.log');
    await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('member started'), 'the member to start');
    assert.ok(fs.existsSync(run.pidPath), 'the pid file exists while HAProxy runs');
    run.cluster.kill('SIGINT');
    assert.is(await exited, 0);
    assert.not.ok(fs.existsSync(run.pidPath), 'no pid file is left');
  } finally {
    removeCluster(run);
  }
});

test.run();
