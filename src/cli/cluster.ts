import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { haproxyInstalled, haproxyPidFileName, LocalCluster, memberNodeFlags, processExists } from '../cluster/local-cluster';
import { parseInteger, UsageError } from '../node/config';
import { readMembershipOf } from '../node/membership-file';
import { makeDirectoriesSync } from '../storage/durable-fs';
import { joinNegativeValues } from '../util/negative-flag-values';
import { countNoun } from './count-noun';
import { renderHaproxyConfig } from './haproxy-config';
import { parseArgsMessage } from '../util/parse-args-message';

/** Interval of the timer, which does nothing, that keeps `replog cluster` running until it is stopped. */
const keepAliveIntervalMs = 2 ** 30;

export const clusterHelp = `replog cluster: run a local cluster of members, behind HAProxy when installed

  --data DIR                    folder for the members' data and logs (default ./replog-data)
  --size N                      members, an odd number from 1 to 9 (default 3)
  --base-port P                 first of 2N+2 consecutive ports (default 7000):
                                P = HAProxy, P+1 unused, P+2.. = members' gRPC, then
                                their HTTP
  --snapshot-threshold N        passed to every member (default: the member's own)
  --snapshot-threshold-bytes N  passed to every member (default: the member's own)

Ctrl-C stops every member and HAProxy cleanly; their logs are in DIR/<id>.log.`;

const sizeMax = 9;

interface ClusterFlags {
  readonly dataDir: string;
  readonly size: number;
  readonly basePort: number;
  readonly memberArgs: string[];
}

function parseClusterFlags(argv: string[]): ClusterFlags {
  let values;
  try {
    const options = {
      data: { type: 'string', default: 'replog-data' },
      size: { type: 'string', default: '3' },
      'base-port': { type: 'string', default: '7000' },
      'snapshot-threshold': { type: 'string' },
      'snapshot-threshold-bytes': { type: 'string' },
    } as const;
    values = parseArgs({ args: joinNegativeValues(argv, options), options, strict: true }).values;
  } catch (err) {
    throw new UsageError(parseArgsMessage(err));
  }
  const size = Number(values.size);
  if (!/^\d+$/.test(values.size) || size < 1 || size > sizeMax || size % 2 === 0) {
    throw new UsageError(`invalid --size "${values.size}": expected an odd number from 1 to ${sizeMax}`);
  }
  const memberArgs: string[] = [];
  if (values['snapshot-threshold'] !== undefined) {
    parseInteger('snapshot-threshold', values['snapshot-threshold'], 1, 1e9);
    memberArgs.push('--snapshot-threshold', values['snapshot-threshold']);
  }
  if (values['snapshot-threshold-bytes'] !== undefined) {
    // The same limits as replog node's flag.
    parseInteger('snapshot-threshold-bytes', values['snapshot-threshold-bytes'], 65536, 2 ** 40);
    memberArgs.push('--snapshot-threshold-bytes', values['snapshot-threshold-bytes']);
  }
  return {
    dataDir: path.resolve(values.data),
    size,
    basePort: parseInteger('base-port', values['base-port'], 1024, 65000),
    memberArgs,
  };
}

/** `replog cluster`: starts the members (and HAProxy) and stops them on Ctrl-C. */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(clusterHelp);
    return 0;
  }
  let flags: ClusterFlags;
  try {
    flags = parseClusterFlags(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`replog cluster: ${err.message}\nRun "replog cluster --help" for the flags.`);
    return 2;
  }
  const holder = clusterUsing(flags.dataDir);
  if (holder !== null) {
    console.error(
      `replog cluster: the data folder ${flags.dataDir} is in use by the cluster with PID ${holder}; ` +
        'stop it or pick another folder with --data',
    );
    return 1;
  }
  const sizeFailure = recordedSizeFailure(flags.dataDir, flags.size);
  if (sizeFailure !== null) {
    console.error(`replog cluster: ${sizeFailure}`);
    return 1;
  }
  const createFailure = dataFolderFailure('create', flags.dataDir, () => makeDirectoriesSync(flags.dataDir));
  if (createFailure !== null) {
    console.error(`replog cluster: ${createFailure}`);
    return 1;
  }
  const cluster = await LocalCluster.create({ ...flags, withHaproxy: true });
  const busy = await cluster.busyAddresses();
  if (busy.length > 0) {
    console.error(`replog cluster: ${busy.join(', ')} already in use${busyHint(flags.dataDir)}`);
    return 1;
  }
  const lockFailure = dataFolderFailure('write cluster.pid in', flags.dataDir, () =>
    fs.writeFileSync(lockPath(flags.dataDir), `${process.pid}\n`),
  );
  if (lockFailure !== null) {
    console.error(`replog cluster: ${lockFailure}`);
    return 1;
  }
  cluster.startAll();
  const haproxy = haproxyInstalled()
    && cluster.startHaproxy(renderHaproxyConfig({ bindGrpc: cluster.haproxyAddress!, members: cluster.members }));
  printAddresses(cluster, haproxy);
  let stopping = false;
  watchMembers(cluster, () => stopping);
  watchHaproxy(cluster, flags.dataDir, () => stopping);
  // Signal listeners alone do not keep the process running, and once every
  // member and HAProxy stopped nothing else would: the process would end
  // without a word and leave cluster.pid behind.
  const keepAlive = setInterval(() => {}, keepAliveIntervalMs);
  return new Promise((resolve) => {
    // A second signal while stopping is only reported. Ending this process early
    // would leave HAProxy running and the data folder marked as in use.
    const stop = (): void => {
      if (stopping) {
        console.log('still stopping members and HAProxy; wait for the closing line');
        return;
      }
      stopping = true;
      console.log('\nstopping members and HAProxy...');
      cluster.stopAll().then(() => {
        clearInterval(keepAlive);
        fs.rmSync(lockPath(flags.dataDir), { force: true });
        console.log(`stopped; data and logs are in ${flags.dataDir}`);
        resolve(0);
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // A closed terminal sends SIGHUP: stop the members and HAProxy then too.
    process.on('SIGHUP', stop);
  });
}

/**
 * Returns why the members in `dataDir` cannot run as a cluster of `size`, or
 * null. A cluster cannot change its members, so the members would refuse to
 * start one by one; this check reports it before any of them starts.
 */
function recordedSizeFailure(dataDir: string, size: number): string | null {
  let recorded;
  try {
    recorded = readMembershipOf(path.join(dataDir, 'n1'));
  } catch (err) {
    return (err as Error).message;
  }
  if (recorded === null || recorded.members.length === size) return null;
  return (
    `the data folder ${dataDir} contains a cluster of ${countNoun(recorded.members.length, 'member')} (${recorded.members.join(',')}), ` +
    `so it cannot run with --size ${size}: start it with --size ${recorded.members.length}, or pick a new folder with --data`
  );
}

/**
 * Returns the end of the message about ports in use: the HAProxy that an
 * earlier `replog cluster` on the folder left running (after a `kill -9`),
 * when its pid file names a live haproxy process, or else a guess.
 */
function busyHint(dataDir: string): string {
  const pidPath = path.join(dataDir, haproxyPidFileName);
  const pid = liveHaproxyPid(pidPath);
  if (pid === null) return ' (another cluster?); stop it or pick other ports with --base-port';
  return (
    `: the HAProxy that an earlier replog cluster on ${dataDir} started still runs (PID ${pid}, from ${pidPath}); ` +
    `stop it with kill ${pid}, or pick other ports with --base-port`
  );
}

/** Returns the PID in `pidPath` when that process is an HAProxy, or null. A PID reused by another program is not one. */
function liveHaproxyPid(pidPath: string): number | null {
  try {
    const pid = Number(fs.readFileSync(pidPath, 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid <= 0) return null;
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'haproxy' ? pid : null;
  } catch {
    return null;
  }
}

/** The compiled CLI entry point, for restart commands that run node directly. */
const mainScript = path.join(__dirname, 'main.js');

/** File in the data folder that names the PID of the cluster using it. */
function lockPath(dataDir: string): string {
  return path.join(dataDir, 'cluster.pid');
}

/**
 * Runs a file system step on the data folder. Returns null when it succeeds,
 * or a one-line message naming --data, the folder and the reason when it
 * fails with a system error such as ENOTDIR or EACCES.
 */
function dataFolderFailure(action: string, dataDir: string, step: () => void): string | null {
  try {
    step();
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code !== 'string') throw err;
    const reason = `${systemErrorDescription(err as NodeJS.ErrnoException)} (${code})`;
    return `cannot ${action} --data ${dataDir}: ${reason}; pick a folder this user can create and write`;
  }
}

/**
 * Returns the description of a Node.js system error without its code, call
 * and path: "not a directory" from "ENOTDIR: not a directory, mkdir '/dev/null/x'".
 */
function systemErrorDescription(err: NodeJS.ErrnoException): string {
  const match = /^[A-Z0-9_]+: (.+?), [a-z]+\b/.exec(err.message);
  return match?.[1] ?? err.message;
}

/** Returns the PID of another running cluster that uses `dataDir`, or null. */
function clusterUsing(dataDir: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(lockPath(dataDir), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return null;
  return processExists(pid) ? pid : null;
}

/** Reports a member that exits on its own, with the command that restarts it. */
function watchMembers(cluster: LocalCluster, stopping: () => boolean): void {
  for (const [id, child] of cluster.processes) {
    child.once('exit', (code, signal) => {
      if (stopping()) return;
      const cause = signal ? `signal ${signal}` : `exit code ${code}`;
      const spec = cluster.member(id);
      const reason = code === 0 ? null : lastErrorLine(spec.logFile);
      console.log(`\n${id} stopped (${cause}); restart it, with its log in the same file, with:`);
      if (reason !== null) console.log(`  (last error in its log: ${reason})`);
      // The command runs node itself, not npx, so `kill $!` stops the member rather than npm.
      console.log(`  node ${memberNodeFlags.join(' ')} ${mainScript} ${cluster.memberArgv(id).join(' ')} >> ${spec.logFile} 2>&1 &`);
      console.log('  (a member started by hand keeps running after Ctrl-C here; stop it with kill $!)');
    });
  }
}

/** Reports HAProxy exiting on its own, with the command that restarts it. */
function watchHaproxy(cluster: LocalCluster, dataDir: string, stopping: () => boolean): void {
  cluster.haproxyProcess?.once('exit', (code, signal) => {
    if (stopping()) return;
    const cause = signal ? `signal ${signal}` : `exit code ${code}`;
    const dir = path.resolve(dataDir);
    console.log(`
HAProxy stopped (${cause}), so nothing answers on ${cluster.haproxyAddress}; restart it with:`);
    console.log(`  haproxy -f ${path.join(dir, 'haproxy.cfg')} -db >> ${path.join(dir, 'haproxy.log')} 2>&1 &`);
    console.log('  (HAProxy started by hand keeps running after Ctrl-C here; stop it with kill $!)');
  });
}

/** Bytes read from the end of a member's log to find why it stopped. */
const logTailBytes = 16 * 1024;

/**
 * Returns the last error in a member's log, or null when there is none. An
 * error is a `replog node:` line or a JSON line at level error or fatal.
 */
function lastErrorLine(logFile: string): string | null {
  let text: string;
  try {
    const fd = fs.openSync(logFile, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buffer = Buffer.alloc(Math.min(size, logTailBytes));
      fs.readSync(fd, buffer, 0, buffer.length, size - buffer.length);
      text = buffer.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  const lines = text.split('\n').reverse();
  for (const line of lines) {
    if (line.startsWith('replog node: ')) return line.slice('replog node: '.length);
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) >= 50) return [entry.msg, entry.err?.message].filter(Boolean).join(': ');
    } catch {
      // A line cut by the start of the tail.
    }
  }
  return null;
}

function printAddresses(cluster: LocalCluster, haproxy: boolean): void {
  const grpcTargets = cluster.members.map((m) => m.grpc).join(',');
  console.log(`replog cluster: ${countNoun(cluster.members.length, 'member')}, data and logs in ${path.dirname(cluster.members[0]!.dataDir)}`);
  for (const m of cluster.members) {
    console.log(`  ${m.id}  gRPC ${m.grpc}  HTTP http://${m.http}/status  log ${m.logFile}`);
  }
  if (haproxy) {
    console.log(`  HAProxy (gRPC, round robin per request): ${cluster.haproxyAddress}`);
  } else {
    console.log('  HAProxy is not installed (apt-get install haproxy); clients can balance themselves:');
    console.log(`  replog send --target ${grpcTargets} uses grpc-js round_robin over the members`);
  }
  const target = haproxy ? cluster.haproxyAddress! : grpcTargets;
  console.log('\ntry:');
  console.log(`  npx replog send --target ${target} --count 1000`);
  console.log(`  npx replog status --http ${cluster.members.map((m) => m.http).join(',')}`);
  console.log('\nCtrl-C stops the cluster.');
}
