import type { LoadMeasurement } from './load-generator';

/** CPU that the watched processes used in the measured interval. */
export interface WatchedCpuReport {
  readonly processes: readonly { readonly pid: number; readonly cpuMs: number | null; readonly peakRssMib: number | null }[];
  /** Null when every watched process was gone at a sample. */
  readonly totalCpuMs: number | null;
  /** Microseconds of watched-process CPU per acknowledged request. */
  readonly cpuUsPerAck: number | null;
}

/** The machine-readable result of one load run, as `--json` prints it. */
export interface LoadReport {
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  readonly measuredSeconds: number;
  readonly acknowledged: number;
  readonly acknowledgedPerSecond: number;
  readonly errorCount: number;
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly firstErrorByCode: Readonly<Record<string, string>>;
  readonly latencyMs: LoadMeasurement['latencyMs'];
  readonly clientCpuMs: number;
  readonly clientCpuPercentOfOneCore: number;
  readonly memberCpu: WatchedCpuReport | null;
}

export function buildLoadReport(
  settings: Readonly<Record<string, string | number | boolean>>,
  measurement: LoadMeasurement,
): LoadReport {
  const errorCount = Object.values(measurement.errorsByCode).reduce((sum, n) => sum + n, 0);
  return {
    settings,
    measuredSeconds: measurement.measuredMs / 1000,
    acknowledged: measurement.acknowledged,
    acknowledgedPerSecond: round(measurement.acknowledgedPerSecond, 1),
    errorCount,
    errorsByCode: measurement.errorsByCode,
    firstErrorByCode: measurement.firstErrorByCode,
    latencyMs: measurement.latencyMs,
    clientCpuMs: round(measurement.selfCpuMs, 1),
    clientCpuPercentOfOneCore: round((100 * measurement.selfCpuMs) / measurement.measuredMs, 1),
    memberCpu: measurement.watchedCpu.length > 0 ? watchedCpuReport(measurement) : null,
  };
}

function watchedCpuReport(measurement: LoadMeasurement): WatchedCpuReport {
  const measured = measurement.watchedCpu.flatMap((use) => (use.cpuMs === null ? [] : [use.cpuMs]));
  if (measured.length === 0) return { processes: measurement.watchedCpu, totalCpuMs: null, cpuUsPerAck: null };
  const totalCpuMs = measured.reduce((sum, cpuMs) => sum + cpuMs, 0);
  return {
    processes: measurement.watchedCpu,
    totalCpuMs: round(totalCpuMs, 1),
    cpuUsPerAck:
      measurement.acknowledged > 0 ? round((totalCpuMs * 1000) / measurement.acknowledged, 1) : null,
  };
}

/** Render a report as aligned text lines for a terminal. */
export function formatLoadReport(report: LoadReport): string {
  const settings = Object.entries(report.settings)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
  const latency = report.latencyMs;
  const lines = [
    `settings        ${settings}`,
    `measured        ${report.measuredSeconds} s`,
    `acknowledged    ${report.acknowledged} (${report.acknowledgedPerSecond} messages/s)`,
    `errors          ${formatErrors(report)}`,
    `latency ms      p50 ${ms(latency.p50)}  p90 ${ms(latency.p90)}  p99 ${ms(latency.p99)}  ` +
      `p99.9 ${ms(latency.p999)}  max ${ms(latency.max)}`,
    `client CPU      ${report.clientCpuMs} ms (${report.clientCpuPercentOfOneCore}% of one core)`,
  ];
  if (report.memberCpu) lines.push(...formatMemberCpu(report.memberCpu));
  for (const [code, message] of Object.entries(report.firstErrorByCode)) {
    lines.push(`first ${code}: ${message}`);
  }
  return lines.join('\n') + '\n';
}

function formatErrors(report: LoadReport): string {
  const byCode = Object.entries(report.errorsByCode).map(([code, n]) => `${code} ${n}`);
  return byCode.length === 0 ? '0' : `${report.errorCount} (${byCode.join(', ')})`;
}

function formatMemberCpu(memberCpu: WatchedCpuReport): string[] {
  const perProcess = memberCpu.processes
    .map((use) => `pid ${use.pid} ${use.cpuMs === null ? 'gone' : `${round(use.cpuMs, 1)} ms`}`)
    .join(', ');
  const perAck = memberCpu.cpuUsPerAck === null ? 'n/a' : `${memberCpu.cpuUsPerAck} µs`;
  const peaks = memberCpu.processes
    .map((use) => `pid ${use.pid} ${use.peakRssMib === null ? 'gone' : `${use.peakRssMib.toFixed(1)} MiB`}`)
    .join(', ');
  return [
    `member CPU      ${memberCpu.totalCpuMs === null ? 'n/a' : `${memberCpu.totalCpuMs} ms`} (${perProcess})`,
    `member CPU/ack  ${perAck} per acknowledged message`,
    `member RSS      peak since start: ${peaks}`,
  ];
}

function ms(value: number): string {
  return value.toFixed(3);
}

function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}
