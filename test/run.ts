// Runs every compiled test file (dist/test/**/*.test.js) in its own process,
// one after the other, and prints the totals as the last line:
// `N passed, N failed`. Arguments filter files by substring.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Maximum time one test file may run before it is killed and counted failed. */
const fileTimeoutMs = 10 * 60 * 1000;
/** Time between the SIGTERM and the SIGKILL of a test file that ran too long. */
const killGraceMs = 5000;

function findTestFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTestFiles(full));
    else if (entry.name.endsWith('.test.js')) found.push(full);
  }
  return found.sort();
}

interface FileResult {
  readonly passed: number;
  readonly failed: number;
  readonly ms: number;
}

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    // SIGTERM first, so that the test process can stop the HAProxy it started (see e2e/harness.ts).
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      console.error(`\n${file}: killed after ${fileTimeoutMs} ms`);
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), killGraceMs);
    }, fileTimeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      const total = Number(/Total:\s+(\d+)/.exec(output)?.[1] ?? 0);
      const passed = Number(/Passed:\s+(\d+)/.exec(output)?.[1] ?? 0);
      let failed = total - passed;
      // A file that crashed or exited non-zero without uvu's totals counts as one failure.
      if (code !== 0 && failed === 0) failed = 1;
      resolve({ passed, failed, ms: Date.now() - started });
    });
  });
}

async function main(): Promise<void> {
  const root = path.join(__dirname);
  const filters = process.argv.slice(2);
  const files = findTestFiles(root).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
  let passed = 0;
  let failed = 0;
  const failedFiles: string[] = [];
  for (const file of files) {
    const name = path.relative(root, file);
    console.log(`\n# ${name}`);
    const result = await runFile(file);
    console.log(`# ${name}: ${result.passed} passed, ${result.failed} failed in ${(result.ms / 1000).toFixed(1)} s`);
    passed += result.passed;
    failed += result.failed;
    if (result.failed > 0) failedFiles.push(name);
  }
  if (failedFiles.length > 0) console.log(`\nfailed files: ${failedFiles.join(', ')}`);
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;
}

void main();
