// Member processes started according to a ClusterPlacement (in network
// namespaces or on 127.0.0.1), with HAProxy in front, for the nemesis test.
// Unlike LocalCluster, it runs each process behind a command prefix such as
// `ip netns exec NS`. That command execs the member, so the child's pid is the
// member's own, and SIGKILL, SIGSTOP and SIGCONT reach it directly.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderHaproxyConfig } from '../../src/cli/haproxy-config';
import { cliPath, memberNodeFlags } from '../../src/cluster/local-cluster';
import type { ClusterPlacement, MemberPlacement } from './placement';

/** Starts `command` behind `prefix` with stdout and stderr appended to `logFile`. */
export function spawnLogged(prefix: readonly string[], command: readonly string[], logFile: string): ChildProcess {
  const words = [...prefix, ...command];
  const out = fs.openSync(logFile, 'a');
  const child = spawn(words[0]!, words.slice(1), { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  child.on('error', (err) => fs.appendFileSync(logFile, `starting ${words.join(' ')} failed: ${err.message}\n`));
  return child;
}

export class PlacedCluster {
  private readonly processes = new Map<string, ChildProcess>();
  private readonly paused = new Set<string>();
  private haproxy: ChildProcess | null = null;

  constructor(
    readonly placement: ClusterPlacement,
    /** Folder of the data folders (`<dir>/<id>`) and logs (`<dir>/<id>.log`). */
    readonly dir: string,
    private readonly memberArgs: readonly string[],
  ) {}

  get memberIds(): string[] {
    return this.placement.members.map((m) => m.id);
  }

  member(id: string): MemberPlacement {
    const found = this.placement.members.find((m) => m.id === id);
    if (!found) throw new Error(`no member ${id} in this cluster`);
    return found;
  }

  logFile(id: string): string {
    return path.join(this.dir, `${id}.log`);
  }

  isRunning(id: string): boolean {
    return this.processes.has(id);
  }

  isPaused(id: string): boolean {
    return this.paused.has(id);
  }

  /** Starts member `id` unless it runs; it resumes from its data folder. */
  start(id: string): void {
    if (this.processes.has(id)) return;
    const m = this.member(id);
    const peers = this.placement.members.map((p) => `${p.id}=${p.peerAddress}`).join(',');
    const command = [
      process.execPath, ...memberNodeFlags, cliPath, 'node', '--id', id, '--data', path.join(this.dir, id),
      '--grpc', m.listenGrpc, '--http', m.listenHttp, '--peers', peers, ...this.memberArgs,
    ];
    const child = spawnLogged(m.commandPrefix, command, this.logFile(id));
    this.processes.set(id, child);
    child.on('exit', () => {
      if (this.processes.get(id) !== child) return;
      this.processes.delete(id);
      this.paused.delete(id);
    });
  }

  /** Sends `signal` to member `id` and waits for it to exit; returns its exit code. */
  async stop(id: string, signal: NodeJS.Signals): Promise<number | null> {
    const child = this.processes.get(id);
    if (!child) return null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    // A stopped process handles no signal but SIGKILL until it is continued.
    if (signal !== 'SIGKILL' && this.paused.has(id)) this.resume(id);
    return exited;
  }

  pause(id: string): void {
    const child = this.processes.get(id);
    if (!child || this.paused.has(id)) return;
    child.kill('SIGSTOP');
    this.paused.add(id);
  }

  resume(id: string): void {
    const child = this.processes.get(id);
    if (!child || !this.paused.has(id)) return;
    child.kill('SIGCONT');
    this.paused.delete(id);
  }

  /** Starts HAProxy next to the clients, spreading calls over every member. */
  startHaproxy(): void {
    const members = this.placement.members.map((m) => ({ id: m.id, grpc: m.clientGrpc, http: m.clientHttp }));
    const configPath = path.join(this.dir, 'haproxy.cfg');
    fs.writeFileSync(configPath, renderHaproxyConfig({ bindGrpc: this.placement.haproxyGrpc, members }));
    const logFile = path.join(this.dir, 'haproxy.log');
    this.haproxy = spawnLogged(this.placement.clientCommandPrefix, ['haproxy', '-f', configPath, '-db'], logFile);
  }

  /** Kills every member and HAProxy with SIGKILL and waits until they have exited. */
  async killAll(): Promise<void> {
    const children = [...this.processes.values()];
    if (this.haproxy && this.haproxy.exitCode === null) children.push(this.haproxy);
    await Promise.all(
      children.map((child) => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return exited;
      }),
    );
  }

  /** Kills every child at once without waiting; for exit handlers. */
  killAllNow(): void {
    for (const child of this.processes.values()) child.kill('SIGKILL');
    this.haproxy?.kill('SIGKILL');
  }
}
