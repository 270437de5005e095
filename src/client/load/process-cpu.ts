import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

/** Clock ticks per second when `getconf CLK_TCK` fails; Linux uses 100. */
const clockTicksPerSecondFallback = 100;
let clockTicksPerSecondCached: number | null = null;

/** Return the kernel's clock ticks per second (`getconf CLK_TCK`), cached. */
export function clockTicksPerSecond(): number {
  if (clockTicksPerSecondCached === null) {
    try {
      const output = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
      const ticks = Number(output);
      clockTicksPerSecondCached = ticks > 0 ? ticks : clockTicksPerSecondFallback;
    } catch {
      clockTicksPerSecondCached = clockTicksPerSecondFallback;
    }
  }
  return clockTicksPerSecondCached;
}

/**
 * Read the CPU time that process `pid` (all its threads) has used so far, in
 * clock ticks: user plus system time, fields 14 and 15 of `/proc/PID/stat`.
 * Returns null when the process is gone or /proc is unreadable.
 */
export function readProcessCpuTicks(pid: number): number | null {
  const stat = readProcFile(pid, 'stat');
  if (stat === null) return null;
  // Field 2 is the command name in parentheses and may contain spaces, so
  // count fields from the last ')'. There, index 0 is field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const userTicks = Number(fields[14 - 3]);
  const systemTicks = Number(fields[15 - 3]);
  if (!Number.isFinite(userTicks) || !Number.isFinite(systemTicks)) return null;
  return userTicks + systemTicks;
}

/**
 * Read the peak resident set size of process `pid` since it started, in KiB:
 * VmHWM in `/proc/PID/status`. Returns null when the process is gone.
 */
export function readProcessPeakRssKib(pid: number): number | null {
  const status = readProcFile(pid, 'status');
  if (status === null) return null;
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return match ? Number(match[1]) : null;
}

/** Returns `/proc/PID/NAME`, or null when the process is gone or /proc is unreadable. */
function readProcFile(pid: number, name: string): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/${name}`, 'utf8');
  } catch {
    return null;
  }
}

/** CPU counters of this process and of the watched processes at one moment. */
export interface CpuSample {
  readonly self: NodeJS.CpuUsage;
  readonly ticksByPid: ReadonlyMap<number, number | null>;
  readonly peakRssKibByPid: ReadonlyMap<number, number | null>;
}

export function takeCpuSample(pids: readonly number[]): CpuSample {
  return {
    self: process.cpuUsage(),
    ticksByPid: new Map(pids.map((pid) => [pid, readProcessCpuTicks(pid)])),
    peakRssKibByPid: new Map(pids.map((pid) => [pid, readProcessPeakRssKib(pid)])),
  };
}

/** CPU one process used between two samples, and its peak RSS at the second. */
export interface ProcessCpuUse {
  readonly pid: number;
  /** Null when the process was missing at either sample. */
  readonly cpuMs: number | null;
  /** Peak RSS since the process started in MiB, or null when it was gone. */
  readonly peakRssMib: number | null;
}

/** CPU of the watched processes between `start` and `end`, in ms each. */
export function watchedCpuBetween(start: CpuSample, end: CpuSample): ProcessCpuUse[] {
  const msPerTick = 1000 / clockTicksPerSecond();
  return [...start.ticksByPid].map(([pid, startTicks]) => {
    const endTicks = end.ticksByPid.get(pid) ?? null;
    const cpuMs =
      startTicks === null || endTicks === null ? null : (endTicks - startTicks) * msPerTick;
    const peakRssKib = end.peakRssKibByPid.get(pid) ?? null;
    const peakRssMib = peakRssKib === null ? null : Math.round((peakRssKib / 1024) * 10) / 10;
    return { pid, cpuMs, peakRssMib };
  });
}
