// The bytes of client requests that a member has begun to receive, over all
// of its calls. Without a bound, calls that stop partway through large
// messages hold their bytes for as long as their clients keep them open.
import { status } from '@grpc/grpc-js';
import { overloadRetryPushbackMs } from './errors';
import type { FramingProblem } from './grpc-messages';

/**
 * Budget of request bytes that a member's Append and AppendStream calls may
 * buffer together. A call reserves a message's declared length once its
 * prefix arrives and releases it when the message is whole or the call ends,
 * so a message that would pass the budget is rejected before its bytes come.
 */
export class ReceiveBudget {
  private reserved = 0;

  constructor(readonly bytesMax: number) {}

  /** Bytes reserved now. */
  get reservedBytes(): number {
    return this.reserved;
  }

  /**
   * Reserves `bytes` and returns null, or returns the RESOURCE_EXHAUSTED
   * problem to end the call with, and reserves nothing, when they do not fit.
   */
  reserve(bytes: number): FramingProblem | null {
    if (this.reserved + bytes > this.bytesMax) {
      return {
        code: status.RESOURCE_EXHAUSTED,
        details:
          `overloaded: ${this.reserved} bytes of requests are being received and this one declares ${bytes} more, ` +
          `the limit is ${this.bytesMax} (--receive-bytes-max); retry after a short back-off`,
        retryPushbackMs: overloadRetryPushbackMs,
      };
    }
    this.reserved += bytes;
    return null;
  }

  /** Returns `bytes` that a call reserved before. */
  release(bytes: number): void {
    this.reserved -= bytes;
  }
}
