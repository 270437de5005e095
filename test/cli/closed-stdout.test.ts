// A reader that closes its end of the pipe early, as `replog status | head -1`
// does, leaves the command to finish with its own exit status, not with an
// EPIPE stack trace.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const mainScript = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

test('closed stdout ends status quietly', async () => {
  // Port 1 refuses at once, so the table of an unreachable member follows quickly.
  const child = spawn(process.execPath, [mainScript, 'status', '--http', '127.0.0.1:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Closed before the child starts writing, so its first write fails with EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  assert.is(stderr, '', 'nothing on stderr');
  assert.is(exitCode, 1, 'the exit status of a status with an unreachable member');
});

test.run();
