// HAProxy started through LocalCluster stops when the process that started it
// ends on an uncaught exception or on SIGTERM, as the members do. Before, a
// crashed test left its HAProxy bound to its ports.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from './harness';

/** Returns the script of a child process that starts HAProxy through LocalCluster, prints its pid, and then throws or waits. */
function childScript(dir: string, ending: 'throw' | 'wait'): string {
  const dist = path.join(__dirname, '../../src');
  return `
    const { LocalCluster } = require(${JSON.stringify(path.join(dist, 'cluster/local-cluster'))});
    const { renderHaproxyConfig } = require(${JSON.stringify(path.join(dist, 'cli/haproxy-config'))});
    require(${JSON.stringify(path.join(__dirname, 'harness'))});
    (async () => {
      const cluster = await LocalCluster.create({ dataDir: ${JSON.stringify(dir)}, size: 3, basePort: 0, withHaproxy: true });
      cluster.startHaproxy(renderHaproxyConfig({ bindGrpc: cluster.haproxyAddress, members: cluster.members }));
      console.log(String(cluster.haproxyProcess.pid));
      setTimeout(() => {
        if (${JSON.stringify(ending)} === 'throw') throw new Error('crash on purpose');
      }, 500);
      setInterval(() => undefined, 1000);
    })();
  `;
}

/** Tells whether `pid` runs. A zombie, which init has not reaped yet, counts as stopped. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Starts the child and waits until it prints HAProxy's pid; returns the pid, the child and its folder. */
async function startChild(ending: 'throw' | 'wait'): Promise<{ pid: number; child: ReturnType<typeof spawn>; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-haproxy-cleanup-'));
  const child = spawn(process.execPath, ['-e', childScript(dir, ending)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const pid = await waitFor('HAProxy pid from the child', async () => Number(/^(\d+)$/m.exec(output)?.[1] ?? 0) || null, 10_000);
  return { pid, child, dir };
}

test('uncaught exception stops HAProxy', async () => {
  const { pid, child, dir } = await startChild('throw');
  assert.ok(alive(pid), 'HAProxy runs while the child runs');
  await new Promise((resolve) => child.once('exit', resolve));
  await waitFor('HAProxy to stop', async () => !alive(pid), 5000);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('SIGTERM stops HAProxy', async () => {
  const { pid, child, dir } = await startChild('wait');
  assert.ok(alive(pid), 'HAProxy runs while the child runs');
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  await waitFor('HAProxy to stop', async () => !alive(pid), 5000);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
