// A small tmpfs mounted as a member's data folder, so a test can fill it up.
// Mount points carry the test's pid in their path. A run killed before its
// cleanup leaves its mount behind, and a later run unmounts it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { processExists } from '../../src/cluster/local-cluster';

/** Bytes per write while filling; smaller writes then fill the last partial block. */
const fillChunkSizes = [1 << 20, 64 << 10, 4 << 10, 512];

function run(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) throw new Error(`${command} ${args.join(' ')} failed: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr.trim()}`);
}

/** Mounts a tmpfs of `sizeBytes` at `dir`, creating the folder. */
export function mountTmpfs(dir: string, sizeBytes: number): void {
  fs.mkdirSync(dir, { recursive: true });
  run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir]);
}

/** Returns null when this process may mount a tmpfs, else the error of a trial mount. */
export function probeMountSupport(tmpDir: string): string | null {
  const dir = fs.mkdtempSync(path.join(tmpDir, 'replog-mount-probe-'));
  try {
    mountTmpfs(dir, 1 << 20);
    unmountIfMounted(dir);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Unmounts `dir` if something is mounted there; lazily, so open files do not block it. */
export function unmountIfMounted(dir: string): void {
  if (!mountPoints().includes(path.resolve(dir))) return;
  run('umount', ['-l', dir]);
}

function mountPoints(): string[] {
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point !== '');
}

/**
 * Unmounts tmpfs mounts below `<tmp>/<prefix><pid>-...` whose process `pid`
 * has exited, and deletes their folders. Returns the unmounted paths.
 */
export function removeLeftoverMounts(tmpDir: string, prefix: string): string[] {
  const pattern = new RegExp(`^${tmpDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${prefix}(\\d+)-[^/]+`);
  const removed: string[] = [];
  for (const point of mountPoints()) {
    const match = pattern.exec(point);
    if (!match || processExists(Number(match[1]))) continue;
    spawnSync('umount', ['-l', point]);
    fs.rmSync(match[0], { recursive: true, force: true });
    removed.push(point);
  }
  return removed;
}

/** Writes `file` until the file system reports ENOSPC; returns the bytes written. */
export function fillUp(file: string): number {
  const fd = fs.openSync(file, 'w');
  let written = 0;
  try {
    for (const size of fillChunkSizes) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          written += fs.writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}
