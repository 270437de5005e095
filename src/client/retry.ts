import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryableAppendError, retryPushbackMsOf } from './errors';
import type { AppendResult } from './types';

/** When and how often a failed append is sent again. */
export interface RetryPolicy {
  /** Attempts after the first one; 0 disables retries. */
  readonly retriesMax: number;
  /** Upper end of the pause before the first retry, doubled for each further retry (see retryPauseMs()). */
  readonly backoffMs: number;
  readonly backoffMsMax: number;
}

export const retryPolicyDefaults: RetryPolicy = {
  retriesMax: 5,
  backoffMs: 100,
  backoffMsMax: 2_000,
};

/**
 * Returns the pause before retry number `attempt` (0 for the first): half of
 * the exponential back-off, at least the server's `pushbackMs`, plus a
 * random part of the other half. Appends that an overloaded member rejected
 * together then come back spread out instead of all at once, when the member
 * has room for only a few of them again.
 */
export function retryPauseMs(policy: RetryPolicy, attempt: number, pushbackMs: number, random: () => number = Math.random): number {
  const backoffMs = Math.min(policy.backoffMsMax, policy.backoffMs * 2 ** attempt);
  return Math.max(pushbackMs, backoffMs / 2) + random() * (backoffMs / 2);
}

/**
 * Run `appendOnce` until it succeeds or the retries run out. An error that
 * isRetryableAppendError() does not retry, or an abort of `signal`, ends the
 * loop early, and the last error is thrown. An abort also ends the pause
 * before a retry. Retrying is safe because members store each valueset at
 * most once.
 */
export async function appendWithRetry(
  appendOnce: () => Promise<AppendResult>,
  policy: RetryPolicy,
  onRetry: (error: unknown) => void = () => undefined,
  signal?: AbortSignal,
): Promise<AppendResult> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await appendOnce();
    } catch (error) {
      if (attempt >= policy.retriesMax || !isRetryableAppendError(error) || signal?.aborted) throw error;
      const pauseMs = retryPauseMs(policy, attempt, retryPushbackMsOf(error) ?? 0);
      // An abort rejects the pause with an AbortError; the append's own error is the one to report.
      await sleep(pauseMs, undefined, { signal }).catch(() => undefined);
      if (signal?.aborted) throw error;
      onRetry(error);
    }
  }
}
