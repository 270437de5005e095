// Print two load reports (`--json` output of `replog bench` and of
// bench/etcd-load.ts), each in full and then side by side with their ratio:
//   node dist/bench/compare-reports.js replog.json etcd.json
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
  const table = [header, ...body];
  const widths = header.map((_, column) => Math.max(...table.map((cells) => cells[column]?.length ?? 0)));
  return table
    .map((cells) => cells.map((cell, column) => cell.padStart(widths[column] ?? 0)).join('  '))
    .join('\n');
}

if (require.main === module) {
  const [leftFile, rightFile] = process.argv.slice(2);
  if (leftFile === undefined || rightFile === undefined) {
    process.stderr.write('usage: node dist/bench/compare-reports.js LEFT.json RIGHT.json\n');
    process.exitCode = 2;
  } else {
    const left = readReport(leftFile);
    const right = readReport(rightFile);
    for (const report of [left, right]) {
      process.stdout.write(`\n== ${String(report.settings['system'])}\n${formatLoadReport(report)}`);
    }
    process.stdout.write(`\n${compareReports(left, right)}\n`);
  }
}
