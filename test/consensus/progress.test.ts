// The leader's flow control per follower: appends in flight, by count and by
// bytes of entry data.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Progress } from '../../src/consensus/progress';

function replicating(inflightMax: number, inflightBytesMax?: number): Progress {
  const progress = new Progress('b', 1, inflightMax, inflightBytesMax);
  progress.becomeReplicate();
  return progress;
}

test('count bound pauses after inflightMax appends', () => {
  const progress = replicating(2);
  progress.recordSent(10, 0, 1000);
  assert.not.ok(progress.isPaused());
  progress.recordSent(20, 0, 1000);
  assert.ok(progress.isPaused());
});

test('byte bound pauses once the data in flight reaches it', () => {
  const progress = replicating(16, 5000);
  progress.recordSent(10, 0, 3000);
  assert.not.ok(progress.isPaused(), '3000 of 5000 bytes');
  progress.recordSent(20, 0, 3000);
  assert.ok(progress.isPaused(), '6000 of 5000 bytes');
  progress.updateMatch(10);
  assert.not.ok(progress.isPaused(), 'the first reply frees its 3000 bytes');
  progress.updateMatch(20);
  progress.recordSent(30, 0, 9000);
  assert.ok(progress.isPaused(), 'one append larger than the bound still goes, alone');
});

test('byte bound resets with the state', () => {
  const progress = replicating(16, 5000);
  progress.recordSent(10, 0, 6000);
  assert.ok(progress.isPaused());
  progress.becomeProbe();
  progress.becomeReplicate();
  assert.not.ok(progress.isPaused(), 'nothing counts as in flight after a reset');
});

test.run();
