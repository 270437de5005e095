// Splits the bytes of a gRPC call into its messages: each is a compressed
// flag byte, a 32-bit big-endian length and that many bytes.
import { status } from '@grpc/grpc-js';
import type { ReceiveBudget } from './receive-budget';

/** Bytes of the gRPC message prefix: a compressed flag and a 32-bit length. */
export const prefixBytes = 5;

/** A gRPC status for bytes of a call that are not a series of whole, uncompressed messages. */
export interface FramingProblem {
  readonly code: status;
  readonly details: string;
  /** Pause before a retry that the status requests, for overload. */
  readonly retryPushbackMs?: number;
}

/**
 * Collects the chunks of one direction of a call and hands out each message
 * once its last byte has arrived. A message that lies within one chunk is a
 * view of that chunk, and one spread over several is copied once.
 */
export class GrpcMessageReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being read, or -1 before its prefix is complete. */
  private declared = -1;

  /** Bytes reserved in the budget for the message being read. */
  private reserved = 0;

  /**
   * Creates a reader of messages up to `messageBytesMax` bytes. With a
   * `budget`, each message reserves its declared length there until it is whole.
   */
  constructor(
    private readonly messageBytesMax: number,
    private readonly budget: ReceiveBudget | null = null,
  ) {}

  /**
   * Adds `chunk` and appends the messages it completes to `out`. Returns the
   * problem that stops the reading, or null. After a problem, call it no more.
   */
  push(chunk: Buffer, out: Buffer[]): FramingProblem | null {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.declared < 0) {
        if (this.buffered < prefixBytes) return null;
        const prefix = this.take(prefixBytes);
        const length = prefix.readUInt32BE(1);
        if (prefix[0] !== 0) {
          return { code: status.INTERNAL, details: 'a message is marked compressed, but the call declares no compression (grpc-encoding missing or identity)' };
        }
        if (length > this.messageBytesMax) {
          return { code: status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${length} vs. ${this.messageBytesMax})` };
        }
        this.declared = length;
        // A message whose bytes are all here takes that memory anyway, so only a partial one reserves.
        if (this.budget !== null && this.buffered < length) {
          const problem = this.budget.reserve(length);
          if (problem !== null) return problem;
          this.reserved = length;
        }
      }
      if (this.buffered < this.declared) return null;
      out.push(this.take(this.declared));
      this.declared = -1;
      this.releaseReserved();
    }
  }

  /** Releases the budget of a message not read to its end. Call it once the call is over. */
  releaseReserved(): void {
    if (this.reserved === 0) return;
    this.budget!.release(this.reserved);
    this.reserved = 0;
  }

  /** Returns why the call may not end here, inside a message, or null when it may. */
  endProblem(): FramingProblem | null {
    if (this.declared < 0 && this.buffered === 0) return null;
    if (this.declared < 0) {
      return { code: status.INTERNAL, details: `the call ended inside the ${prefixBytes}-byte message prefix` };
    }
    return { code: status.INTERNAL, details: `a message declares ${this.declared} bytes, but the call ended after ${this.buffered}` };
  }

  /** Removes the first `length` buffered bytes and returns them. */
  private take(length: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      this.buffered -= length;
      return first.subarray(0, length);
    }
    const piece = Buffer.allocUnsafe(length);
    let at = 0;
    while (at < length) {
      const chunk = this.chunks[0]!;
      const count = Math.min(chunk.length, length - at);
      chunk.copy(piece, at, 0, count);
      at += count;
      if (count === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(count);
    }
    this.buffered -= length;
    return piece;
  }
}
