import type { AppendStream, AppendStreamOptions } from './append-stream';
import type { IngestClient } from './ingest-client';
import type { AppendResult } from './types';

/**
 * A fixed number of `AppendStream` calls used side by side. A stream that
 * failed is replaced by a new call on the next append through its slot, so one
 * broken connection costs the appends then in flight, not the rest of the run.
 */
export class AppendStreamPool {
  private readonly streams: (AppendStream | null)[];

  constructor(
    private readonly client: IngestClient,
    streamCount: number,
    private readonly options: AppendStreamOptions,
  ) {
    this.streams = new Array<AppendStream | null>(streamCount).fill(null);
  }

  /** Append through stream `slot` modulo the pool size. */
  append(slot: number, valueset: string): Promise<AppendResult> {
    return this.streamAt(slot % this.streams.length).append(valueset);
  }

  /** Half-close every open stream and wait until the server has ended each. */
  async close(): Promise<void> {
    await Promise.all(this.streams.map((stream) => stream?.close()));
  }

  private streamAt(position: number): AppendStream {
    const current = this.streams[position];
    if (current && !current.failed) return current;
    const replacement = this.client.appendStream(this.options);
    this.streams[position] = replacement;
    return replacement;
  }
}
