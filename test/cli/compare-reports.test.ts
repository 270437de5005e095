// The side-by-side table of bench/compare-reports.ts, over one round and as
// medians over several rounds of alternating runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareReports, compareRounds, median } from '../../bench/compare-reports';
import { buildLoadReport, type LoadReport } from '../../src/client/load/load-report';

/** Builds a 1-second report of `system` with `perSecond` acknowledged appends and a p99 of `p99Ms`. */
function report(system: string, perSecond: number, p99Ms: number): LoadReport {
  return buildLoadReport(
    { system },
    {
      measuredMs: 1000,
      acknowledged: perSecond,
      acknowledgedPerSecond: perSecond,
      errorsByCode: {},
      firstErrorByCode: {},
      latencyMs: { p50: 1, p90: 2, p99: p99Ms, p999: p99Ms, max: p99Ms, mean: 1 },
      selfCpuMs: 100,
      watchedCpu: [],
    },
  );
}

/** Returns the cells of the table row whose label starts with `label`. */
function row(table: string, label: string): string[] {
  const line = table.split('\n').find((l) => l.trim().startsWith(label));
  assert.ok(line, `a row "${label}" in:\n${table}`);
  return (line ?? '').trim().slice(label.length).trim().split(/\s+/);
}

test('median of odd, even and empty lists', () => {
  assert.is(median([3, 1, 2]), 2);
  assert.is(median([4, 1, 3, 2]), 2.5);
  assert.is(median([]), null);
});

test('one round shows values and ratio', () => {
  const table = compareReports(report('replog', 900, 10), report('etcd', 1000, 20));
  assert.equal(row(table, 'acknowledged/s'), ['900', '1000', '0.90']);
  assert.equal(row(table, 'latency p99 ms'), ['10', '20', '0.50']);
  assert.equal(row(table, 'member CPU µs/ack'), ['n/a', 'n/a', 'n/a']);
});

test('rounds take medians of ratios', () => {
  // The machine slows down in the second round, but the ratio within each round stays 0.9 or 1.
  const table = compareRounds([
    { left: report('replog', 900, 10), right: report('etcd', 1000, 10) },
    { left: report('replog', 450, 10), right: report('etcd', 500, 10) },
    { left: report('replog', 1000, 10), right: report('etcd', 1000, 10) },
  ]);
  assert.ok(table.includes('lowest-highest'), table);
  assert.equal(row(table, 'acknowledged/s'), ['900', '1000', '0.90', '0.90-1.00']);
  assert.equal(row(table, 'errors'), ['0', '0', 'n/a', 'n/a']);
});

test.run();
