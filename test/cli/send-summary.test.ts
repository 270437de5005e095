import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countNoun } from '../../src/cli/count-noun';
import { formatSendSummary, SendTally, summarizeSend } from '../../src/cli/send-summary';
import { IngestError } from '../../src/client/errors';

test('summary prints error code once', () => {
  const tally = new SendTally();
  tally.sent = 2;
  tally.recordError(new IngestError(grpc.status.INVALID_ARGUMENT, 'invalid valueset: 65537 UTF-8 bytes is over the limit'));
  tally.recordError(new IngestError(grpc.status.INVALID_ARGUMENT, 'invalid valueset: empty'));
  const summary = summarizeSend(tally, 1_000);
  assert.equal(summary.errorsByCode, { INVALID_ARGUMENT: 2 });
  assert.equal(summary.firstErrorByCode, { INVALID_ARGUMENT: 'invalid valueset: 65537 UTF-8 bytes is over the limit' });
  const lines = formatSendSummary(summary).trimEnd().split('\n');
  assert.is(lines[lines.length - 1], 'first INVALID_ARGUMENT: invalid valueset: 65537 UTF-8 bytes is over the limit');
});

test('summary keeps message without code', () => {
  const tally = new SendTally();
  tally.recordError(new Error('socket hang up'));
  const lines = formatSendSummary(summarizeSend(tally, 1_000)).trimEnd().split('\n');
  assert.is(lines[lines.length - 1], 'first UNKNOWN: socket hang up');
});

test('summary names lowest failing line', () => {
  const tally = new SendTally();
  tally.sent = 3;
  const tooLong = (bytes: number) => new IngestError(grpc.status.INVALID_ARGUMENT, `invalid valueset: ${bytes} UTF-8 bytes is over the limit`);
  // Concurrent appends fail out of order: line 9 first, then line 4.
  tally.recordError(tooLong(70_001), { number: 9, text: 'y'.repeat(70_001) });
  tally.recordError(tooLong(70_000), { number: 4, text: `${'\u{1F600}'.repeat(19)}abc${'x'.repeat(69_900)}` });
  tally.recordError(tooLong(70_002), { number: 6, text: 'z'.repeat(70_002) });
  const summary = summarizeSend(tally, 1_000);
  assert.equal(summary.firstErrorByCode, { INVALID_ARGUMENT: 'invalid valueset: 70000 UTF-8 bytes is over the limit' });
  // 20 characters: 19 emoji (two UTF-16 units each) and "a", none cut in half.
  assert.equal(summary.firstErrorLineByCode, { INVALID_ARGUMENT: { line: 4, start: `${'\u{1F600}'.repeat(19)}a`, truncated: true } });
  const lines = formatSendSummary(summary).trimEnd().split('\n');
  assert.is(
    lines[lines.length - 1],
    `first INVALID_ARGUMENT: invalid valueset: 70000 UTF-8 bytes is over the limit (stdin line 4, starting "${'\u{1F600}'.repeat(19)}a")`,
  );
});

test('summary quotes short line whole', () => {
  const tally = new SendTally();
  tally.recordError(new IngestError(grpc.status.RESOURCE_EXHAUSTED, 'overloaded'), { number: 2, text: 'short "line"' });
  const lines = formatSendSummary(summarizeSend(tally, 1_000)).trimEnd().split('\n');
  assert.is(lines[lines.length - 1], 'first RESOURCE_EXHAUSTED: overloaded (stdin line 2, "short \\"line\\"")');
});

test('summary explains overload errors', () => {
  const tally = new SendTally();
  tally.recordError(new IngestError(grpc.status.RESOURCE_EXHAUSTED, 'overloaded: 4 appends in progress, the limit is 4'));
  tally.recordError(new IngestError(grpc.status.RESOURCE_EXHAUSTED, 'overloaded: 4 appends in progress, the limit is 4'));
  const lines = formatSendSummary(summarizeSend(tally, 1_000)).trimEnd().split('\n');
  const overloaded = lines.find((line) => line.startsWith('overloaded'));
  assert.match(overloaded ?? '', /^overloaded +2 failed after their retries because members were overloaded: lower --concurrency/);
});

test('summary without overload omits hint', () => {
  const tally = new SendTally();
  tally.recordError(new IngestError(grpc.status.UNAVAILABLE, 'no leader is known'));
  const lines = formatSendSummary(summarizeSend(tally, 1_000)).trimEnd().split('\n');
  assert.not.ok(lines.some((line) => line.startsWith('overloaded')));
});

test('interrupted summary counts unanswered', () => {
  const tally = new SendTally();
  tally.sent = 5;
  tally.recordResult({ index: 1, duplicate: false });
  tally.recordResult({ index: 2, duplicate: true });
  tally.recordError(new IngestError(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
  const summary = summarizeSend(tally, 1_000, 'SIGINT');
  assert.is(summary.interruptedBy, 'SIGINT');
  assert.is(summary.unanswered, 2);
  const lines = formatSendSummary(summary).trimEnd().split('\n');
  assert.is(lines[0], 'interrupted   by SIGINT, after which no valueset was sent');
  assert.is(lines[5], 'unanswered    2 (no reply when send stopped waiting, so each may or may not be stored)');
});

test('duplicates after a retry are named', () => {
  const tally = new SendTally();
  tally.sent = 4;
  tally.recordResult({ index: 1, duplicate: false });
  tally.recordResult({ index: 2, duplicate: true });
  tally.recordResult({ index: 3, duplicate: true }, true);
  tally.recordResult({ index: 4, duplicate: false }, true);
  const summary = summarizeSend(tally, 1_000);
  assert.is(summary.stored, 2);
  assert.is(summary.duplicates, 2);
  assert.is(summary.duplicatesAfterRetry, 1);
  assert.is(summary.unanswered, 0);
  const lines = formatSendSummary(summary).split('\n');
  assert.is(lines[2], 'duplicates    2 (1 after a retry, which an earlier attempt of the same append may have stored)');
});

test('complete summary has no interrupt lines', () => {
  const tally = new SendTally();
  tally.sent = 1;
  tally.recordResult({ index: 1, duplicate: false });
  const summary = summarizeSend(tally, 1_000);
  assert.is(summary.interruptedBy, null);
  assert.is(summary.unanswered, 0);
  const text = formatSendSummary(summary);
  assert.ok(text.startsWith('sent          1\n'), text);
  assert.not.match(text, 'unanswered');
});

test('countNoun uses singular for 1', () => {
  assert.is(countNoun(0, 'member'), '0 members');
  assert.is(countNoun(1, 'member'), '1 member');
  assert.is(countNoun(3, 'member'), '3 members');
  assert.is(countNoun(1, 'entry', 'entries'), '1 entry');
  assert.is(countNoun(2, 'entry', 'entries'), '2 entries');
});

test.run();
