import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryableAppendError, retryPushbackMsOf } from './errors';
import type { AppendResult } from './types';

/** When and how often a failed append is sent again. */
export interface RetryPolicy {
  /** Attempts after the first one; 0 disables retries. */
  readonly retriesMax: number;
  /** Pause before the first retry; doubled for each further retry. */
  readonly backoffMs: number;
  readonly backoffMsMax: number;
}

export const retryPolicyDefaults: RetryPolicy = {
  retriesMax: 5,
  backoffMs: 100,
  backoffMsMax: 2_000,
};

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
      // An overloaded member may request a longer pause than the back-off.
      const backoffMs = Math.max(retryPushbackMsOf(error) ?? 0, Math.min(policy.backoffMsMax, policy.backoffMs * 2 ** attempt));
      // An abort rejects the pause with an AbortError; the append's own error is the one to report.
      await sleep(backoffMs, undefined, { signal }).catch(() => undefined);
      if (signal?.aborted) throw error;
      onRetry(error);
    }
  }
}
