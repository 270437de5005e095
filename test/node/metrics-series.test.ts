// The labelled counters of a member's /metrics have their series from the
// start, at 0, so that a rate() or an alert has them before the first event.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemberMetrics } from '../../src/node/metrics';

test('labelled counters start at zero', async () => {
  const text = await new MemberMetrics().registry.metrics();
  for (const series of [
    'replog_proposals_failed_total{code="UNAVAILABLE"} 0',
    'replog_proposals_failed_total{code="RESOURCE_EXHAUSTED"} 0',
    'replog_install_snapshot_sent_total{result="ok"} 0',
    'replog_install_snapshot_sent_total{result="failed"} 0',
    'replog_install_snapshot_received_total{result="ok"} 0',
    'replog_install_snapshot_received_total{result="failed"} 0',
  ]) {
    assert.ok(text.includes(series), `/metrics has ${series}`);
  }
});

test.run();
