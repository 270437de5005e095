// The stderr notice of `replog send` when appends keep failing after their
// retries: only for codes that mean no member replied, only once the appends
// in flight have all failed, and at most once per interval.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OutageNotice } from '../../src/cli/outage-notice';
import { IngestError } from '../../src/client/errors';

/** Returns a notice with a threshold of 3 and a 10 s interval, its written lines and a settable clock. */
function noticeUnderTest(): { notice: OutageNotice; lines: string[]; clock: { nowMs: number } } {
  const lines: string[] = [];
  const clock = { nowMs: 0 };
  const notice = new OutageNotice(3, (line) => lines.push(line), 10_000, () => clock.nowMs);
  return { notice, lines, clock };
}

const unavailable = new IngestError(grpc.status.UNAVAILABLE, 'Received HTTP status code 503');

test('notice waits for threshold failures', () => {
  const { notice, lines } = noticeUnderTest();
  notice.failed(unavailable);
  notice.failed(unavailable);
  assert.is(lines.length, 0);
  notice.failed(unavailable);
  assert.is(lines.length, 1);
  assert.is(
    lines[0],
    'replog send: the last 3 appends failed after all their retries, the last one with UNAVAILABLE: ' +
      'Received HTTP status code 503 (the load balancer has no member up to take the call; check that the members run). ' +
      'Members may be down or unreachable. ' +
      'Sending goes on, and each valueset gets its retries. Press Ctrl-C to stop.\n',
  );
});

test('success restarts the failure count', () => {
  const { notice, lines } = noticeUnderTest();
  notice.failed(unavailable);
  notice.failed(unavailable);
  notice.succeeded();
  notice.failed(unavailable);
  notice.failed(unavailable);
  assert.is(lines.length, 0);
});

test('other codes never count', () => {
  const { notice, lines } = noticeUnderTest();
  for (let i = 0; i < 5; i++) notice.failed(new IngestError(grpc.status.INVALID_ARGUMENT, 'invalid valueset: empty'));
  for (let i = 0; i < 5; i++) notice.failed(new IngestError(grpc.status.RESOURCE_EXHAUSTED, 'overloaded'));
  assert.is(lines.length, 0);
});

test('notice repeats once per interval', () => {
  const { notice, lines, clock } = noticeUnderTest();
  const timeout = new IngestError(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded');
  for (let i = 0; i < 10; i++) notice.failed(timeout);
  assert.is(lines.length, 1);
  clock.nowMs = 9_999;
  notice.failed(timeout);
  assert.is(lines.length, 1);
  clock.nowMs = 10_000;
  notice.failed(timeout);
  assert.is(lines.length, 2);
  assert.match(lines[1]!, 'the last 12 appends failed after all their retries, the last one with DEADLINE_EXCEEDED');
});

test.run();
