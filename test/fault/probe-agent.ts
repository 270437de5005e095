// A child process that fetches members' /status and reads their messages on
// behalf of the test, from where the clients run (the hub namespace, or the
// test's own namespace). Requests and replies are JSON lines on stdin and
// stdout, matched by `id`. ProbeAgent is the test's side of it.
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { connectIngest } from '../../src/client';
import type { MemberStatus } from '../../src/node/member';

/** One stored message as a compact tuple: index, valueset, receivedAtMs. */
export type MessageTuple = readonly [number, string, number];

type Request =
  | { readonly id: number; readonly op: 'status'; readonly http: readonly string[] }
  | { readonly id: number; readonly op: 'read'; readonly grpc: string };

interface Reply {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: string;
}

/** Time limit of one /status request, in milliseconds. */
const statusTimeoutMs = 1000;

async function fetchStatus(http: string): Promise<MemberStatus | null> {
  try {
    const response = await fetch(`http://${http}/status`, { signal: AbortSignal.timeout(statusTimeoutMs) });
    return (await response.json()) as MemberStatus;
  } catch {
    return null;
  }
}

async function readMessages(grpc: string): Promise<MessageTuple[]> {
  const client = connectIngest(grpc);
  const messages: MessageTuple[] = [];
  try {
    for await (const m of client.read(0, 0, false)) messages.push([m.index, m.valueset, m.receivedAtMs]);
  } finally {
    client.close();
  }
  return messages;
}

async function handle(request: Request): Promise<unknown> {
  if (request.op === 'status') return Promise.all(request.http.map(fetchStatus));
  return readMessages(request.grpc);
}

function serve(): void {
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const request = JSON.parse(line) as Request;
    handle(request).then(
      (result) => process.stdout.write(`${JSON.stringify({ id: request.id, result })}\n`),
      (err: unknown) => process.stdout.write(`${JSON.stringify({ id: request.id, error: String(err) })}\n`),
    );
  });
  lines.on('close', () => process.exit(0));
}

/** The test's handle on a running probe agent. */
export class ProbeAgent {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();

  private constructor(private readonly child: ChildProcess) {
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => this.settle(JSON.parse(line) as Reply));
    child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`probe agent exited with code ${code}`));
      this.pending.clear();
    });
  }

  /** Starts the agent behind `commandPrefix` (e.g. `ip netns exec HUB`). */
  static start(commandPrefix: readonly string[]): ProbeAgent {
    const words = [...commandPrefix, process.execPath, __filename];
    const child = spawn(words[0]!, words.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    return new ProbeAgent(child);
  }

  /** Fetches /status of each address, in the order given; null where the request failed. */
  statuses(http: readonly string[]): Promise<(MemberStatus | null)[]> {
    return this.request({ op: 'status', http }) as Promise<(MemberStatus | null)[]>;
  }

  /** Reads every message the member at `grpc` stores, in index order. */
  read(grpc: string): Promise<MessageTuple[]> {
    return this.request({ op: 'read', grpc }) as Promise<MessageTuple[]>;
  }

  close(): void {
    this.child.stdin?.end();
    this.child.kill('SIGKILL');
  }

  private request(body: { op: 'status'; http: readonly string[] } | { op: 'read'; grpc: string }): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  private settle(reply: Reply): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (reply.error !== undefined) waiter.reject(new Error(`probe agent: ${reply.error}`));
    else waiter.resolve(reply.result);
  }
}

if (require.main === module) serve();
