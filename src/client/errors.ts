import * as grpc from '@grpc/grpc-js';

/** Message of the CANCELLED error of an append stream that this client cancelled. */
export const clientCancelMessage = 'append stream cancelled by the client';

/** Name of the gRPC trailer in which a server requests a pause before a retry. */
export const retryPushbackTrailer = 'grpc-retry-pushback-ms';

/**
 * A failed replog call: the gRPC status code, the server's message, and the
 * pause before a retry that the server requested, or null when it requested
 * none. An overloaded member requests one with RESOURCE_EXHAUSTED, and a
 * request that is too large gets the same code without it.
 */
export class IngestError extends Error {
  readonly code: grpc.status;
  readonly retryPushbackMs: number | null;

  constructor(code: grpc.status, message: string, retryPushbackMs: number | null = null) {
    super(`${statusCodeName(code)}: ${withMeaning(message)}`);
    this.name = 'IngestError';
    this.code = code;
    this.retryPushbackMs = retryPushbackMs;
  }
}

/**
 * Returns the pause before a retry that the trailers of a failed call
 * request, or null when they request none or the value is not a count of
 * milliseconds.
 */
export function retryPushbackFromTrailers(trailers: grpc.Metadata | undefined): number | null {
  const value = trailers?.get(retryPushbackTrailer)[0];
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) return null;
  return Number(value);
}

/**
 * Adds what a transport message means where grpc-js reports only the HTTP
 * status: HAProxy replies 503 when none of its members is up.
 */
function withMeaning(message: string): string {
  if (!message.includes('Received HTTP status code 503')) return message;
  return `${message} (the load balancer has no member up to take the call; check that the members run)`;
}

/** Return the name of a gRPC status code, e.g. `UNAVAILABLE` for 14. */
export function statusCodeName(code: number): string {
  const name: unknown = (grpc.status as Record<number, unknown>)[code];
  return typeof name === 'string' ? name : `CODE_${code}`;
}

/** Return the gRPC status code of an error thrown by a call, UNKNOWN if none. */
export function errorCode(error: unknown): grpc.status {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'number' && statusCodeName(code) !== `CODE_${code}`) {
      return code;
    }
  }
  return grpc.status.UNKNOWN;
}

/**
 * Return true when an append that failed with this error may be sent again:
 * UNAVAILABLE, DEADLINE_EXCEEDED, a call cut off by its server or by a
 * proxy, or RESOURCE_EXHAUSTED from an overloaded member, which requests a
 * pause first. Appends deduplicate by valueset, so a retry of an append whose
 * outcome is unknown stores the valueset at most once.
 */
export function isRetryableAppendError(error: unknown): boolean {
  const code = errorCode(error);
  if (code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) return true;
  if (code === grpc.status.RESOURCE_EXHAUSTED) return retryPushbackMsOf(error) !== null;
  // HAProxy resets the streams of a member that died with CANCELLED, and
  // grpc-js reports "Call cancelled". A cancel by this client is not retried.
  if (code === grpc.status.CANCELLED) {
    const message = error instanceof Error ? error.message : '';
    return !message.includes(clientCancelMessage) && !message.includes('Cancelled on client');
  }
  // NOTE: grpc-js 1.14 reports a server that closes the stream without a
  // status (as a member does when it stops) as INTERNAL "Received RST_STREAM".
  return code === grpc.status.INTERNAL && error instanceof Error && error.message.includes('RST_STREAM');
}

/** Returns the pause before a retry that the server requested with `error`, or null. */
export function retryPushbackMsOf(error: unknown): number | null {
  return error instanceof IngestError ? error.retryPushbackMs : null;
}
