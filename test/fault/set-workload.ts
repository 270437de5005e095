// The client side of the set test, run as its own process next to HAProxy:
// workers append unique valuesets and write every invocation and outcome as a
// JSON line to a history file, as Jepsen's set workload does. An outcome is
// `ok` (with the index), `fail` (the append certainly did not happen) or
// `info` (unknown: a deadline passed or the cluster was unavailable, so it may
// still commit). An unknown append is retried once with the same valueset,
// which must then report the index it was first stored at.
//
// Run: node set-workload.js '<json WorkloadOptions>'. It stops after
// `seconds`, or on SIGTERM, waits for the calls in flight, and prints a JSON
// summary line.
import * as fs from 'node:fs';
import { status } from '@grpc/grpc-js';
import { connectIngest, errorCode, type IngestClient } from '../../src/client';

export interface WorkloadOptions {
  /** gRPC target of HAProxy. */
  readonly target: string;
  readonly historyFile: string;
  /** Prefix of every valueset, unique to the run. */
  readonly valuePrefix: string;
  readonly workers: number;
  /** gRPC channels the workers share round robin. */
  readonly channels: number;
  readonly seconds: number;
  readonly deadlineMs: number;
}

/** One line of the history file. */
export interface HistoryEvent {
  readonly process: number;
  readonly type: 'invoke' | 'ok' | 'fail' | 'info';
  readonly f: 'append';
  readonly value: string;
  readonly index?: number;
  readonly duplicate?: boolean;
  readonly error?: string;
  readonly timeMs: number;
}

export interface WorkloadSummary {
  readonly invoked: number;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
}

/**
 * Codes after which the valueset was certainly not stored: the member
 * rejected the request before proposing it. Every other error may hide a
 * commit, so it is recorded as unknown.
 */
const definiteFailureCodes: ReadonlySet<number> = new Set([status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED]);

/** Pause after an unknown outcome before the retry, in milliseconds. */
const retryPauseMs = 100;

class Workload {
  private stopping = false;
  private readonly summary = { invoked: 0, ok: 0, fail: 0, info: 0 };
  private readonly out: fs.WriteStream;
  private readonly clients: IngestClient[];

  constructor(private readonly options: WorkloadOptions) {
    this.out = fs.createWriteStream(options.historyFile, { flags: 'a' });
    this.clients = Array.from({ length: options.channels }, () => connectIngest(options.target));
  }

  stop(): void {
    this.stopping = true;
  }

  async run(): Promise<WorkloadSummary> {
    const timer = setTimeout(() => this.stop(), this.options.seconds * 1000);
    const workers = Array.from({ length: this.options.workers }, (_, p) => this.worker(p));
    await Promise.all(workers);
    clearTimeout(timer);
    for (const client of this.clients) client.close();
    await new Promise((resolve) => this.out.end(resolve));
    return this.summary;
  }

  private async worker(processId: number): Promise<void> {
    const client = this.clients[processId % this.clients.length]!;
    for (let n = 0; !this.stopping; n++) {
      const value = `${this.options.valuePrefix}-${processId}-${n}`;
      const outcome = await this.append(client, processId, value);
      if (outcome === 'info' && !this.stopping) {
        await new Promise((resolve) => setTimeout(resolve, retryPauseMs));
        await this.append(client, processId, value);
      }
    }
  }

  private async append(client: IngestClient, processId: number, value: string): Promise<HistoryEvent['type']> {
    this.record({ process: processId, type: 'invoke', f: 'append', value, timeMs: Date.now() });
    this.summary.invoked++;
    try {
      const result = await client.append(value, this.options.deadlineMs);
      this.record({ process: processId, type: 'ok', f: 'append', value, index: result.index, duplicate: result.duplicate, timeMs: Date.now() });
      this.summary.ok++;
      return 'ok';
    } catch (err) {
      const type = definiteFailureCodes.has(errorCode(err)) ? 'fail' : 'info';
      this.record({ process: processId, type, f: 'append', value, error: (err as Error).message, timeMs: Date.now() });
      this.summary[type]++;
      return type;
    }
  }

  private record(event: HistoryEvent): void {
    this.out.write(`${JSON.stringify(event)}\n`);
  }
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '') as WorkloadOptions;
  const workload = new Workload(options);
  process.once('SIGTERM', () => workload.stop());
  const summary = await workload.run();
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`set workload failed: ${String(err)}`);
    process.exit(1);
  });
}
