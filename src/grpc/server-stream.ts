// Helpers for the server side of gRPC streams that grpc-js leaves to the handler.
import * as grpc from '@grpc/grpc-js';

/** Resolves when `call` can take more writes, or when the client cancelled it. */
export function waitForDrain(call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
  });
}

/**
 * Ends a server or bidirectional stream with an error status. grpc-js sends
 * the status when the stream emits 'error'; destroy(err) would close the
 * stream without one, and the client would wait for its deadline.
 */
export function failStream(call: Pick<grpc.ServerWritableStream<unknown, unknown>, 'emit'>, code: grpc.status, details: string): void {
  call.emit('error', { code, details });
}

/**
 * The open streams' shutdown callbacks, all run when `signal` aborts. One
 * listener on the signal serves every stream, and a stream that ends removes
 * its callback, so nothing piles up on a member that runs for a long time.
 */
export class ShutdownListeners {
  private readonly callbacks = new Set<() => void>();

  constructor(readonly signal: AbortSignal) {
    signal.addEventListener('abort', () => {
      for (const callback of [...this.callbacks]) callback();
      this.callbacks.clear();
    });
  }

  /** Runs `callback` at shutdown, at once if it began; returns the function that cancels this. */
  add(callback: () => void): () => void {
    if (this.signal.aborted) {
      callback();
      return () => undefined;
    }
    this.callbacks.add(callback);
    return () => this.callbacks.delete(callback);
  }
}
