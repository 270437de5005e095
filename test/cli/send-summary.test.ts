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

test('countNoun uses singular for 1', () => {
  assert.is(countNoun(0, 'member'), '0 members');
  assert.is(countNoun(1, 'member'), '1 member');
  assert.is(countNoun(3, 'member'), '3 members');
  assert.is(countNoun(1, 'entry', 'entries'), '1 entry');
  assert.is(countNoun(2, 'entry', 'entries'), '2 entries');
});

test.run();
