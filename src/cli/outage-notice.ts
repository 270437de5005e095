import * as grpc from '@grpc/grpc-js';
import { errorCode, statusCodeName } from '../client/errors';
import { messageWithoutCode } from './send-summary';

/** Time between two outage notices of one run, in ms. */
export const outageNoticeIntervalMs = 10_000;

/**
 * Writes a line to stderr when appends keep failing after all their retries
 * because no member replies, and again at most every `intervalMs` while they
 * go on failing. Without it, a `replog send` whose members are all down, and
 * whose stderr is no terminal with a progress bar, prints nothing while it
 * spends the retries of every remaining valueset.
 */
export class OutageNotice {
  private failedInARow = 0;
  private lastNoticeMs = -Infinity;

  /**
   * Creates a notice that first writes once `threshold` appends in a row have
   * failed: the appends in flight, so that all of them failed.
   */
  constructor(
    private readonly threshold: number,
    private readonly write: (line: string) => void,
    private readonly intervalMs = outageNoticeIntervalMs,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Notes an acknowledged append, which ends a run of failures. */
  succeeded(): void {
    this.failedInARow = 0;
  }

  /** Notes an append that failed after its retries. */
  failed(error: unknown): void {
    const code = errorCode(error);
    // Other codes come from members that replied, or from the input itself.
    if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) return;
    this.failedInARow += 1;
    if (this.failedInARow < this.threshold) return;
    const nowMs = this.now();
    if (nowMs - this.lastNoticeMs < this.intervalMs) return;
    this.lastNoticeMs = nowMs;
    const name = statusCodeName(code);
    this.write(
      `replog send: the last ${this.failedInARow} appends failed after all their retries, the last one with ` +
        `${name}: ${messageWithoutCode(error, name)}. Members may be down or unreachable. ` +
        'Sending goes on, and each valueset gets its retries. Press Ctrl-C to stop.\n',
    );
  }
}
