#!/usr/bin/env node
import { clusterHelp } from './cluster';
import { nodeHelp } from './node';

interface Command {
  readonly summary: string;
  readonly load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

// Commands load lazily, so `replog node` does not pay for the bench's libraries.
const commands: Record<string, Command> = {
  node: { summary: 'run one cluster member', load: () => import('./node') },
  cluster: { summary: 'run a local cluster of 3 or 5 members behind HAProxy', load: () => import('./cluster') },
  send: { summary: 'append lines from stdin or N generated messages', load: () => import('./send') },
  status: { summary: 'show every member\'s role, indexes and digest in one table', load: () => import('./status') },
  bench: { summary: 'measure append throughput and latency', load: () => import('./bench') },
};

function usage(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return [
    'usage: replog <command> [flags]',
    '',
    'commands:',
    ...rows,
    '',
    'Run `replog <command> --help` for its flags.',
    '',
    nodeHelp(),
    '',
    clusterHelp,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
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
