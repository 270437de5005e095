// Which failed appends a client sends again. Appends deduplicate by valueset,
// so any failure whose outcome is unknown may be retried, and so may an
// overloaded member's rejection, which requests a pause. A cancel by the
// client itself is not retried, and neither is a rejected request.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IngestError, isRetryableAppendError } from '../../src/client';
import { clientCancelMessage, retryPushbackFromTrailers } from '../../src/client/errors';
import { appendWithRetry, retryPauseMs, retryPolicyDefaults } from '../../src/client/retry';
import type { AppendResult } from '../../src/client/types';
import { watchInterrupt } from '../../src/cli/interrupt';

const cases: readonly [string, IngestError, boolean][] = [
  ['no leader', new IngestError(grpc.status.UNAVAILABLE, 'no leader is known'), true],
  ['deadline', new IngestError(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'), true],
  ['stream reset by HAProxy', new IngestError(grpc.status.CANCELLED, 'Call cancelled'), true],
  ['stream reset without status', new IngestError(grpc.status.INTERNAL, 'Received RST_STREAM with code 2'), true],
  ['cancelled by this client', new IngestError(grpc.status.CANCELLED, clientCancelMessage), false],
  ['cancelled by grpc-js on the client', new IngestError(grpc.status.CANCELLED, 'Cancelled on client'), false],
  ['bad valueset', new IngestError(grpc.status.INVALID_ARGUMENT, 'invalid valueset: it is empty'), false],
  ['overload requesting a pause', new IngestError(grpc.status.RESOURCE_EXHAUSTED, 'overloaded', 100), true],
  ['message too large', new IngestError(grpc.status.RESOURCE_EXHAUSTED, 'Received message larger than max'), false],
];

test('retryable append errors by code', () => {
  for (const [name, error, retryable] of cases) {
    assert.is(isRetryableAppendError(error), retryable, name);
  }
});

test('HAProxy without members is explained', () => {
  const error = new IngestError(grpc.status.UNAVAILABLE, 'Received HTTP status code 503');
  assert.match(error.message, /no member up to take the call/);
  assert.ok(isRetryableAppendError(error), 'a member may come back');
});

test('pushback trailer read as milliseconds', () => {
  const trailers = (value: string): grpc.Metadata => {
    const metadata = new grpc.Metadata();
    metadata.set('grpc-retry-pushback-ms', value);
    return metadata;
  };
  assert.is(retryPushbackFromTrailers(trailers('100')), 100);
  assert.is(retryPushbackFromTrailers(trailers('0')), 0);
  assert.is(retryPushbackFromTrailers(trailers('-1')), null, 'a negative value requests no retry');
  assert.is(retryPushbackFromTrailers(trailers('soon')), null);
  assert.is(retryPushbackFromTrailers(new grpc.Metadata()), null);
  assert.is(retryPushbackFromTrailers(undefined), null);
});

test('retry waits the requested pause', async () => {
  const interrupt = watchInterrupt();
  try {
    const policy = { ...retryPolicyDefaults, backoffMs: 1, backoffMsMax: 1 };
    const attemptsAtMs: number[] = [];
    const appendOnce = async (): Promise<AppendResult> => {
      attemptsAtMs.push(performance.now());
      if (attemptsAtMs.length === 1) throw new IngestError(grpc.status.RESOURCE_EXHAUSTED, 'overloaded', 60);
      return { index: 1, duplicate: false };
    };
    const result = await appendWithRetry(appendOnce, policy, () => undefined, interrupt.signal);
    assert.equal(result, { index: 1, duplicate: false });
    assert.is(attemptsAtMs.length, 2);
    // Node schedules timers from the event loop's cached time in whole
    // milliseconds, so a pause can measure up to about 1 ms short.
    assert.ok(attemptsAtMs[1]! - attemptsAtMs[0]! >= 59, `the retry came ${attemptsAtMs[1]! - attemptsAtMs[0]!} ms later`);
  } finally {
    interrupt.dispose();
  }
});

test('retry pause jitters within bounds', () => {
  const policy = { ...retryPolicyDefaults, backoffMs: 100, backoffMsMax: 2_000 };
  assert.is(retryPauseMs(policy, 0, 0, () => 0), 50, 'half of the first back-off at least');
  assert.is(retryPauseMs(policy, 0, 0, () => 1), 100, 'the whole first back-off at most');
  assert.is(retryPauseMs(policy, 2, 0, () => 0.5), 300, 'the back-off doubles per retry');
  assert.is(retryPauseMs(policy, 10, 0, () => 1), 2_000, 'the back-off stops at its maximum');
  assert.is(retryPauseMs(policy, 0, 100, () => 0), 100, "the member's pause is the least");
  assert.is(retryPauseMs(policy, 0, 100, () => 1), 150, 'a random part follows the pause');
});

test('many retries warn nothing', async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning);
  };
  process.on('warning', onWarning);
  const interrupt = watchInterrupt();
  try {
    const policy = { ...retryPolicyDefaults, backoffMs: 1, backoffMsMax: 1 };
    const appends = Array.from({ length: 50 }, async (_, i) => {
      let attempts = 0;
      const appendOnce = async (): Promise<AppendResult> => {
        attempts += 1;
        if (attempts === 1) throw new IngestError(grpc.status.UNAVAILABLE, 'no leader is known');
        return { index: i + 1, duplicate: false };
      };
      return appendWithRetry(appendOnce, policy, () => undefined, interrupt.signal);
    });
    const results = await Promise.all(appends);
    assert.is(results.length, 50);
    // Node emits process warnings on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    interrupt.dispose();
    process.off('warning', onWarning);
  }
  assert.equal(warnings.map((w) => w.name), [], 'no MaxListenersExceededWarning for 50 retries at once');
});

test.run();
