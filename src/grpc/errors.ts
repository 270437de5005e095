import { status } from '@grpc/grpc-js';

/**
 * Pause in milliseconds that an overloaded member requests of a client before it
 * sends a rejected append again. It travels in the standard gRPC trailer
 * `grpc-retry-pushback-ms`, which separates overload from a request that is
 * too large, the other cause of RESOURCE_EXHAUSTED.
 */
export const overloadRetryPushbackMs = 100;

export { retryPushbackTrailer } from '../client/errors';

/**
 * An error that reaches a client as a gRPC status. Every failure the client API
 * reports is built by one of the constructors below, so the catalogue of codes
 * and their wording lives in this file.
 */
export class ReplogError extends Error {
  override readonly name = 'ReplogError';
  constructor(
    readonly code: status,
    message: string,
    /** Pause before a retry that the reply requests, or null when it requests none. */
    readonly retryPushbackMs: number | null = null,
  ) {
    super(message);
  }
}

/**
 * A forwarded append whose wait was given up, because its target stopped
 * leading or the connection to it hung. The target may still have stored
 * it, so a retry may reply `duplicate: true`.
 */
export class ForwardAbandonedError extends ReplogError {
  constructor(
    readonly leaderId: string,
    reason: string,
  ) {
    super(status.UNAVAILABLE, `forwarding to leader ${leaderId} was abandoned: ${reason}; it may still commit; retry is safe`);
  }
}

export const errors = {
  valuesetEmpty: () => new ReplogError(status.INVALID_ARGUMENT, 'invalid valueset: it is empty; send 1 to 65536 UTF-8 bytes'),
  valuesetTooLong: (bytes: number, max: number) =>
    new ReplogError(status.INVALID_ARGUMENT, `invalid valueset: ${bytes} UTF-8 bytes is over the limit of ${max} bytes`),
  noLeader: () =>
    new ReplogError(status.UNAVAILABLE, 'no leader is known; the cluster may be electing one or lack a quorum; retry is safe'),
  leaderLost: () =>
    new ReplogError(status.UNAVAILABLE, 'leadership changed before the append committed; it may still commit; retry is safe'),
  forwardedToFollower: (id: string, leaderId: string | null) =>
    new ReplogError(
      status.UNAVAILABLE,
      `forwarded append reached ${id}, which does not lead (leader: ${leaderId ?? 'unknown'}); retry is safe; ` +
        'if this repeats, check the --peers addresses of the member that forwarded it',
    ),
  entryOverwritten: (index: number) =>
    new ReplogError(status.UNAVAILABLE, `the entry at index ${index} was replaced by a new leader; retry is safe`),
  commitTimeout: (ms: number) =>
    new ReplogError(status.UNAVAILABLE, `the append did not commit within ${ms} ms; it may still commit; retry is safe`),
  forwardFailed: (leaderId: string, reason: string) =>
    new ReplogError(status.UNAVAILABLE, `forwarding to leader ${leaderId} failed: ${reason}; retry is safe`),
  forwardAbandoned: (leaderId: string, reason: string) => new ForwardAbandonedError(leaderId, reason),
  overloaded: (pending: number, max: number) =>
    new ReplogError(
      status.RESOURCE_EXHAUSTED,
      `overloaded: ${pending} appends in progress, the limit is ${max}; retry after a short back-off`,
      overloadRetryPushbackMs,
    ),
  overloadedBytes: (pendingBytes: number, bytes: number, max: number) =>
    new ReplogError(
      status.RESOURCE_EXHAUSTED,
      `overloaded: ${pendingBytes} bytes of valuesets in progress and ${bytes} more in this append, the limit is ${max}; retry after a short back-off`,
      overloadRetryPushbackMs,
    ),
  /**
   * Rebuilds the error of a leader's reply to a forwarded append. The leader
   * sends RESOURCE_EXHAUSTED there only for its bounds on appends in
   * progress, so that code keeps its request for a pause and names the
   * leader, whose bound it was.
   */
  fromLeaderReply: (leaderId: string, code: status, message: string) =>
    code === status.RESOURCE_EXHAUSTED
      ? new ReplogError(code, `leader ${leaderId}: ${message}`, overloadRetryPushbackMs)
      : new ReplogError(code, message),
  handingOver: () =>
    new ReplogError(status.UNAVAILABLE, 'the leader is handing over its role and stored nothing; retry is safe'),
  committedCatchingUp: (index: number, appliedIndex: number) =>
    new ReplogError(
      status.UNAVAILABLE,
      `the append is committed at index ${index}, but this member is catching up (applied index ${appliedIndex}); a retry on another member returns it as a duplicate`,
    ),
  catchingUp: (appliedIndex: number, leaderIndex: number) =>
    new ReplogError(
      status.UNAVAILABLE,
      `the member is catching up (applied index ${appliedIndex}, the leader is at ${leaderIndex} or later); retry on another member`,
    ),
  shuttingDown: () => new ReplogError(status.UNAVAILABLE, 'the member is shutting down; retry on another member'),
  storageFailed: (reason: string) =>
    new ReplogError(status.UNAVAILABLE, `the member could not write to its disk: ${reason}; retry on another member`),
  invalidReadLimit: (limit: number, max: number) =>
    new ReplogError(status.INVALID_ARGUMENT, `invalid limit ${limit}: the maximum is ${max}`),
} as const;

/** Maps any thrown value to a ReplogError, keeping codes that are already set. */
export function toReplogError(err: unknown): ReplogError {
  if (err instanceof ReplogError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ReplogError(status.INTERNAL, `internal error: ${message}`);
}
