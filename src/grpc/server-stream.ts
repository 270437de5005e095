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
