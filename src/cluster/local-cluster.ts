import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { stopOnStdinCloseVariable } from '../node/config';
import { makeDirectoriesSync } from '../storage/durable-fs';

/** File in the data folder with the pid of the HAProxy that startHaproxy started, while it runs. */
export const haproxyPidFileName = 'haproxy.pid';

/** Path of the compiled CLI entry point, from dist/src/cluster/. */
export const cliPath = path.join(__dirname, '../cli/main.js');

/**
 * Node.js flags of every member process. On a busy machine with few cores,
 * V8's collector otherwise waits for helper threads that have no core. With
 * it on the main thread only, members used 6% less CPU per append, and their
 * p99 latency at 1,000 appends a second fell by a fifth (BENCHMARKS.md).
 */
export const memberNodeFlags: readonly string[] = ['--single-threaded-gc'];

export interface LocalMemberSpec {
  readonly id: string;
  readonly grpc: string;
  readonly http: string;
  readonly dataDir: string;
  readonly logFile: string;
}

export interface LocalClusterOptions {
  readonly dataDir: string;
  readonly size: number;
  /** First port of a contiguous block; 0 picks free ports. */
  readonly basePort: number;
  readonly host?: string;
  /** Extra `replog node` flags for every member, e.g. ['--snapshot-threshold', '1000']. */
  readonly memberArgs?: readonly string[];
  /** Node.js flags for every member process after memberNodeFlags, e.g. ['--heapsnapshot-signal=SIGUSR2']. */
  readonly nodeFlags?: readonly string[];
  readonly withHaproxy: boolean;
}

/**
 * Member processes on one machine, each with its own data folder and log file,
 * optionally behind a real HAProxy. Used by `replog cluster` and by the tests,
 * which kill, pause and restart members through it.
 */
export class LocalCluster {
  readonly members: LocalMemberSpec[] = [];
  readonly processes = new Map<string, ChildProcess>();
  haproxyAddress: string | null = null;
  private haproxy: ChildProcess | null = null;
  private memberArgs: readonly string[];
  private readonly nodeFlags: readonly string[];

  private constructor(private readonly options: LocalClusterOptions) {
    this.memberArgs = options.memberArgs ?? [];
    this.nodeFlags = [...memberNodeFlags, ...(options.nodeFlags ?? [])];
  }

  static async create(options: LocalClusterOptions): Promise<LocalCluster> {
    const cluster = new LocalCluster(options);
    const host = options.host ?? '127.0.0.1';
    const ports = await allocatePorts(options.basePort, options.size * 2 + 2);
    for (let i = 0; i < options.size; i++) {
      const id = `n${i + 1}`;
      const dataDir = path.join(options.dataDir, id);
      cluster.members.push({
        id,
        grpc: `${host}:${ports[2 + i]}`,
        http: `${host}:${ports[2 + options.size + i]}`,
        dataDir,
        logFile: path.join(options.dataDir, `${id}.log`),
      });
    }
    if (options.withHaproxy) cluster.haproxyAddress = `${host}:${ports[0]}`;
    makeDirectoriesSync(options.dataDir);
    return cluster;
  }

  get peersFlag(): string {
    return this.members.map((m) => `${m.id}=${m.grpc}`).join(',');
  }

  /** Returns the addresses of HAProxy and the members that another process listens on now. */
  busyAddresses(): Promise<string[]> {
    const haproxy = this.haproxyAddress === null ? [] : [this.haproxyAddress];
    return unavailableAddresses([...haproxy, ...this.members.flatMap((m) => [m.grpc, m.http])]);
  }

  member(id: string): LocalMemberSpec {
    const spec = this.members.find((m) => m.id === id);
    if (!spec) throw new Error(`no member ${id} in this cluster`);
    return spec;
  }

  /** Returns the `replog node` arguments of one member, after the CLI path. */
  memberArgv(id: string, extraArgs: readonly string[] = []): string[] {
    const spec = this.member(id);
    return [
      'node', '--id', id, '--data', spec.dataDir, '--grpc', spec.grpc, '--http', spec.http,
      '--peers', this.peersFlag, ...this.memberArgs, ...extraArgs,
    ];
  }

  /** Starts (or restarts) one member process with its data folder. */
  startMember(id: string, extraArgs: readonly string[] = []): ChildProcess {
    const spec = this.member(id);
    const out = fs.openSync(spec.logFile, 'a');
    const args = [...this.nodeFlags, cliPath, ...this.memberArgv(id, extraArgs)];
    // The stdin pipe closes when this process ends, and the member then stops.
    const env = { ...process.env, [stopOnStdinCloseVariable]: '1' };
    const child = spawn(process.execPath, args, { stdio: ['pipe', out, out], env });
    fs.closeSync(out);
    this.processes.set(id, child);
    child.on('exit', () => {
      if (this.processes.get(id) === child) this.processes.delete(id);
    });
    return child;
  }

  startAll(): void {
    for (const m of this.members) this.startMember(m.id);
  }

  /** Sends `signal` to a member and waits for its process to exit. */
  async stopMember(id: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.processes.get(id);
    // A process killed by a signal has exitCode null and signalCode set; either means it is gone.
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    return exited;
  }

  pauseMember(id: string): void {
    this.processes.get(id)?.kill('SIGSTOP');
  }

  resumeMember(id: string): void {
    this.processes.get(id)?.kill('SIGCONT');
  }

  /** The HAProxy process that startHaproxy started, or null. */
  get haproxyProcess(): ChildProcess | null {
    return this.haproxy;
  }

  /** Starts HAProxy in front of the members; returns false when it is not installed. */
  startHaproxy(configText: string): boolean {
    if (!this.haproxyAddress || !haproxyInstalled()) return false;
    const cfgPath = path.join(this.options.dataDir, 'haproxy.cfg');
    fs.writeFileSync(cfgPath, configText);
    const out = fs.openSync(path.join(this.options.dataDir, 'haproxy.log'), 'a');
    const haproxy = spawn('haproxy', ['-f', cfgPath, '-db'], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.haproxy = haproxy;
    // HAProxy writes no pid file in foreground mode (-db), and a user whose
    // `replog cluster` was killed needs the pid to stop the HAProxy left behind.
    const pidPath = path.join(this.options.dataDir, haproxyPidFileName);
    if (haproxy.pid !== undefined) fs.writeFileSync(pidPath, `${haproxy.pid}\n`);
    // Members stop when their stdin pipe closes, and HAProxy reads no stdin, so it
    // is stopped when this process exits, even on an uncaught exception.
    const stopOnExit = (): void => {
      haproxy.kill('SIGTERM');
    };
    process.on('exit', stopOnExit);
    haproxy.once('exit', () => {
      process.off('exit', stopOnExit);
      fs.rmSync(pidPath, { force: true });
    });
    return true;
  }

  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all([...this.processes.keys()].map((id) => this.stopMember(id, signal)));
    if (this.haproxy && this.haproxy.exitCode === null && this.haproxy.signalCode === null) {
      const exited = new Promise((resolve) => this.haproxy!.once('exit', resolve));
      this.haproxy.kill('SIGTERM');
      await exited;
    }
  }
}

export function haproxyInstalled(): boolean {
  return spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** Returns `count` ports: basePort.. when given, else free ports the OS picks. */
async function allocatePorts(basePort: number, count: number): Promise<number[]> {
  if (basePort > 0) return Array.from({ length: count }, (_, i) => basePort + i);
  return freePorts(count);
}

/** Returns `count` distinct ports that were free on 127.0.0.1 a moment ago. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    ports.push((server.address() as net.AddressInfo).port);
  }
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** Returns the HOST:PORT addresses on which a listener cannot be opened now. */
async function unavailableAddresses(addresses: readonly string[]): Promise<string[]> {
  const unavailable: string[] = [];
  for (const address of addresses) {
    const at = address.lastIndexOf(':');
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(Number(address.slice(at + 1)), address.slice(0, at), () => resolve(true));
    });
    if (free) await new Promise((resolve) => server.close(resolve));
    else unavailable.push(address);
  }
  return unavailable;
}

/** Returns whether a process with this pid exists (EPERM means it does, owned by another user). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
