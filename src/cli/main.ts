#!/usr/bin/env node
import * as fs from 'node:fs';
import * as path from 'node:path';

interface Command {
  readonly summary: string;
  readonly load: () => Promise<{ run(argv: string[]): Promise<number> }>;
  /** The command's full help text, for `replog --help`. */
  readonly help: () => Promise<string>;
}

// Commands load lazily, so `replog node` does not pay for the bench's libraries.
const commands: Record<string, Command> = {
  node: { summary: 'run one cluster member', load: () => import('./node'), help: () => import('./node').then((m) => m.nodeHelp()) },
  cluster: { summary: 'run a local cluster of 1 to 9 members (odd --size), behind HAProxy when installed', load: () => import('./cluster'), help: () => import('./cluster').then((m) => m.clusterHelp) },
  send: { summary: 'append lines from stdin or N generated messages', load: () => import('./send'), help: () => import('./send').then((m) => m.sendHelp) },
  status: { summary: 'show every member\'s role, indexes and digest in one table', load: () => import('./status'), help: () => import('./status').then((m) => m.statusHelp) },
  bench: { summary: 'measure append throughput and latency', load: () => import('./bench'), help: () => import('./bench').then((m) => m.benchHelp) },
  verify: { summary: 'check that every member stores the same messages (Read vs /status vs each other)', load: () => import('./verify'), help: () => import('./verify').then((m) => m.verifyHelp) },
  experiment: { summary: 'reproduce the prototype experiments (steady load, member down, load test) and write a report', load: () => import('./experiment'), help: () => import('./experiment').then((m) => m.experimentHelp) },
};

async function usage(): Promise<string> {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  const helps = await Promise.all(Object.values(commands).map((c) => c.help()));
  return ['usage: replog <command> [flags]', '       replog --version', '', 'commands:', ...rows, '', ...helps.flatMap((h) => [h.trimEnd(), ''])].join('\n');
}

/** Returns the version in package.json, three folders above the compiled file (dist/src/cli), as in a checkout and the image. */
function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version') {
    console.log(`replog ${packageVersion()}`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`replog: unknown command ${JSON.stringify(name)}; expected one of ${Object.keys(commands).join(', ')}`);
    return 2;
  }
  const module = await command.load();
  return module.run(rest);
}

// A reader that closes the pipe early, as `replog status | head -1` does, or a
// closed terminal is not a failure of the command: its output is dropped, and
// it finishes and exits with its own status, so `replog cluster` still stops
// its members.
const lostOutputCodes = new Set(['EPIPE', 'EIO', 'ERR_STREAM_DESTROYED']);
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (!lostOutputCodes.has(err.code ?? '')) throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let pino flush, then exit even if a library keeps a handle open.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (err: unknown) => {
    console.error(`replog: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exit(1);
  },
);
