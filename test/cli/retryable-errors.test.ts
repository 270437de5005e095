// Which failed appends a client sends again. Appends deduplicate by valueset,
// so any failure whose outcome is unknown may be retried. A cancel by the
// client itself is not retried, and neither is a rejected request.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IngestError, isRetryableAppendError } from '../../src/client';
import { clientCancelMessage } from '../../src/client/errors';

const cases: readonly [string, IngestError, boolean][] = [
  ['no leader', new IngestError(grpc.status.UNAVAILABLE, 'no leader is known'), true],
  ['deadline', new IngestError(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'), true],
  ['stream reset by HAProxy', new IngestError(grpc.status.CANCELLED, 'Call cancelled'), true],
  ['stream reset without status', new IngestError(grpc.status.INTERNAL, 'Received RST_STREAM with code 2'), true],
  ['cancelled by this client', new IngestError(grpc.status.CANCELLED, clientCancelMessage), false],
  ['cancelled by grpc-js on the client', new IngestError(grpc.status.CANCELLED, 'Cancelled on client'), false],
  ['bad valueset', new IngestError(grpc.status.INVALID_ARGUMENT, 'invalid valueset: it is empty'), false],
  ['overload', new IngestError(grpc.status.RESOURCE_EXHAUSTED, 'overloaded'), false],
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

test.run();
