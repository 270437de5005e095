// The watched-process figures of `replog bench --pids`: CPU and peak RSS
// read from /proc, and how the report prints them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildLoadReport, formatLoadReport } from '../../src/client/load/load-report';
import { readProcessPeakRssKib, takeCpuSample, watchedCpuBetween, type ProcessCpuUse } from '../../src/client/load/process-cpu';

/** A PID that no process has, above the largest PID Linux allows (2^22). */
const missingPid = 2 ** 22 + 1;

/** Returns the printed report of a 1-second run with 10 acknowledged appends. */
function reportText(watchedCpu: readonly ProcessCpuUse[]): string {
  const measurement = {
    measuredMs: 1000,
    acknowledged: 10,
    acknowledgedPerSecond: 10,
    errorsByCode: {},
    firstErrorByCode: {},
    latencyMs: { p50: 1, p90: 1, p99: 1, p999: 1, max: 1, mean: 1 },
    selfCpuMs: 5,
    watchedCpu,
  };
  return formatLoadReport(buildLoadReport({ system: 'replog' }, measurement));
}

test('peak RSS of live and missing processes', () => {
  const peakKib = readProcessPeakRssKib(process.pid);
  assert.ok(peakKib !== null, 'a live process has a peak RSS');
  assert.ok((peakKib ?? 0) > 1024, `peak RSS ${String(peakKib)} KiB`);
  assert.is(readProcessPeakRssKib(missingPid), null);
});

test('report prints per-process CPU and RSS', () => {
  const start = takeCpuSample([process.pid, missingPid]);
  const end = takeCpuSample([process.pid, missingPid]);
  const watchedCpu = watchedCpuBetween(start, end);
  assert.is(watchedCpu[1]?.peakRssMib, null);
  const text = reportText(watchedCpu);
  const peak = watchedCpu[0]?.peakRssMib ?? 0;
  assert.ok(peak > 1, `peak RSS ${peak} MiB`);
  assert.match(text, `member RSS      peak since start: pid ${process.pid} ${peak.toFixed(1)} MiB, pid ${missingPid} gone`);
  assert.match(text, `pid ${missingPid} gone)`);
});

test('no member CPU when all gone', () => {
  const watchedCpu = watchedCpuBetween(takeCpuSample([missingPid]), takeCpuSample([missingPid]));
  const text = reportText(watchedCpu);
  assert.match(text, `member CPU      n/a (pid ${missingPid} gone)`);
  assert.match(text, 'member CPU/ack  n/a per acknowledged message');
});

test.run();
