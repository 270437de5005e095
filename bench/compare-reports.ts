// Print two load reports (`--json` output of `replog bench` and of
// bench/etcd-load.ts), each in full and then side by side with their ratio:
//   node dist/bench/compare-reports.js replog.json etcd.json
// With one pair per round of alternating runs, print each round's table and
// then the medians over the rounds:
//   node dist/bench/compare-reports.js replog-1.json etcd-1.json replog-2.json etcd-2.json ...
import * as fs from 'node:fs';
import { formatLoadReport, type LoadReport } from '../src/client/load/load-report';

interface Row {
  readonly label: string;
  readonly value: (report: LoadReport) => number | null;
}

const rows: readonly Row[] = [
  { label: 'acknowledged/s', value: (report) => report.acknowledgedPerSecond },
  { label: 'errors', value: (report) => report.errorCount },
  { label: 'latency p50 ms', value: (report) => report.latencyMs.p50 },
  { label: 'latency p90 ms', value: (report) => report.latencyMs.p90 },
  { label: 'latency p99 ms', value: (report) => report.latencyMs.p99 },
  { label: 'latency p99.9 ms', value: (report) => report.latencyMs.p999 },
  { label: 'latency max ms', value: (report) => report.latencyMs.max },
  { label: 'member CPU µs/ack', value: (report) => report.memberCpu?.cpuUsPerAck ?? null },
  { label: 'client CPU % core', value: (report) => report.clientCpuPercentOfOneCore },
  { label: 'member peak RSS MiB', value: largestPeakRss },
];

/** Returns the largest peak RSS of the watched members, or null when none was read. */
function largestPeakRss(report: LoadReport): number | null {
  // Reports written before peak RSS was recorded have no peakRssMib field.
  const peaks = (report.memberCpu?.processes ?? []).flatMap((use) => (typeof use.peakRssMib === 'number' ? [use.peakRssMib] : []));
  return peaks.length === 0 ? null : Math.max(...peaks);
}

function readReport(file: string): LoadReport {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as LoadReport;
}

function formatNumber(value: number | null): string {
  if (value === null) return 'n/a';
  return String(Number(value.toFixed(3)));
}

/** Render the comparison table; the ratio column is left / right. */
export function compareReports(left: LoadReport, right: LoadReport): string {
  const leftName = String(left.settings['system'] ?? 'left');
  const rightName = String(right.settings['system'] ?? 'right');
  const header = ['', leftName, rightName, `${leftName}/${rightName}`];
  const body = rows.map((row) => {
    const a = row.value(left);
    const b = row.value(right);
    const ratio = a === null || b === null || b === 0 ? null : a / b;
    return [row.label, formatNumber(a), formatNumber(b), ratio === null ? 'n/a' : ratio.toFixed(2)];
  });
  return formatTable([header, ...body]);
}

/** Returns the median of `values`, the mean of the middle two for an even count; null when empty. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle] as number;
  return ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export interface ReportPair {
  readonly left: LoadReport;
  readonly right: LoadReport;
}

/**
 * Renders the medians over rounds of each side's value and of the ratio
 * left / right within each round, with the lowest and highest ratio. A ratio
 * within a round cancels the drift of a machine whose speed changes between rounds.
 */
export function compareRounds(pairs: readonly ReportPair[]): string {
  const first = pairs[0];
  if (first === undefined) throw new RangeError('invalid pairs: expected at least one pair of reports, got none');
  const leftName = String(first.left.settings['system'] ?? 'left');
  const rightName = String(first.right.settings['system'] ?? 'right');
  const header = ['', leftName, rightName, `${leftName}/${rightName}`, 'lowest-highest'];
  const body = rows.map((row) => {
    const lefts: number[] = [];
    const rights: number[] = [];
    const ratios: number[] = [];
    for (const { left, right } of pairs) {
      const a = row.value(left);
      const b = row.value(right);
      if (a !== null) lefts.push(a);
      if (b !== null) rights.push(b);
      if (a !== null && b !== null && b !== 0) ratios.push(a / b);
    }
    const ratio = median(ratios);
    const range = ratios.length === 0 ? 'n/a' : `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}`;
    return [row.label, formatNumber(median(lefts)), formatNumber(median(rights)), ratio === null ? 'n/a' : ratio.toFixed(2), range];
  });
  return formatTable([header, ...body]);
}

function formatTable(table: readonly string[][]): string {
  const columns = Math.max(...table.map((cells) => cells.length));
  const widths = Array.from({ length: columns }, (_, column) => Math.max(...table.map((cells) => cells[column]?.length ?? 0)));
  return table.map((cells) => cells.map((cell, column) => cell.padStart(widths[column] ?? 0)).join('  ')).join('\n');
}

if (require.main === module) {
  const files = process.argv.slice(2);
  if (files.length < 2 || files.length % 2 !== 0) {
    process.stderr.write(
      `usage: node dist/bench/compare-reports.js LEFT.json RIGHT.json [LEFT.json RIGHT.json ...]; got ${files.length} files, expected an even number of at least 2\n`,
    );
    process.exitCode = 2;
  } else {
    const pairs: ReportPair[] = [];
    for (let i = 0; i < files.length; i += 2) {
      pairs.push({ left: readReport(files[i] as string), right: readReport(files[i + 1] as string) });
    }
    pairs.forEach(({ left, right }, i) => {
      const round = pairs.length > 1 ? ` (round ${i + 1} of ${pairs.length})` : '';
      for (const report of [left, right]) {
        process.stdout.write(`\n== ${String(report.settings['system'])}${round}\n${formatLoadReport(report)}`);
      }
      process.stdout.write(`\n${compareReports(left, right)}\n`);
    });
    if (pairs.length > 1) {
      process.stdout.write(`\n== median of ${pairs.length} rounds\n${compareRounds(pairs)}\n`);
    }
  }
}
