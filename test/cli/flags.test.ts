import { PassThrough, Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run as runBench } from '../../src/cli/bench';
import type { CliIo } from '../../src/cli/client-flags';
import { parseSendFlags, run as runSend } from '../../src/cli/send';
import { run as runStatus } from '../../src/cli/status';

type Command = (argv: string[], io: CliIo) => Promise<number>;

interface Outcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command with captured output and an empty stdin. */
async function runCaptured(command: Command, argv: string[]): Promise<Outcome> {
  const output = { stdout: '', stderr: '' };
  const sink = (name: 'stdout' | 'stderr'): Writable =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        output[name] += chunk.toString();
        done();
      },
    });
  const stdin = new PassThrough();
  stdin.end();
  const exitCode = await command(argv, { stdin, stdout: sink('stdout'), stderr: sink('stderr') });
  return { exitCode, ...output };
}

/** Each case: command, arguments, and text the error message must contain. */
const invalidCases: readonly [string, Command, string[], string][] = [
  ['send', runSend, ['--count', '5'], 'missing --target: expected HOST:PORT[,HOST:PORT...]'],
  ['send', runSend, ['--target', 'localhost'], 'invalid --target "localhost": expected HOST:PORT'],
  ['send', runSend, ['--target', '127.0.0.1:0'], 'invalid --target "127.0.0.1:0": expected HOST:PORT with a port from 1 to 65535'],
  ['send', runSend, ['--target', 'a.example:1,b.example:2'], 'invalid --target "a.example:1": expected an IP address'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--count', 'ten'], 'invalid --count "ten": expected an integer from 1 to'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--count', '0'], 'invalid --count "0"'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--concurrency', '1.5'], 'invalid --concurrency "1.5": expected an integer'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--deadline-ms=-1'], 'invalid --deadline-ms "-1"'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--count', '-5'], 'invalid --count "-5": expected an integer from 1 to'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--retries', '1000'], 'invalid --retries "1000": expected an integer from 0 to 100'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--colour'], 'unknown flag --colour'],
  ['send', runSend, ['--target', '127.0.0.1:5000', 'extra'], 'unexpected argument "extra": expected flags only'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--count'], 'missing value for --count'],
  ['send', runSend, ['--target', '127.0.0.1:5000', '--json=yes'], '--json takes no value'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--mode', 'batch'], 'invalid --mode "batch": expected unary or stream'],
  // Above 2^22, the largest PID Linux allows.
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--pids', '4194305'], 'invalid --pids: no process has PID 4194305'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--rate=-5'], 'invalid --rate "-5": expected an integer from 0 to'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--rate', '-5'], 'invalid --rate "-5": expected an integer from 0 to'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--duration-s', '0'], 'invalid --duration-s "0": expected an integer from 1 to'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--warmup-s', 'x'], 'invalid --warmup-s "x"'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--value-bytes', '70000'], 'invalid --value-bytes "70000": expected an integer from 1 to 65536'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--value-order', 'shuffled'], 'invalid --value-order "shuffled": expected sequential or random'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--mode', 'stream', '--streams', '0'], 'invalid --streams "0"'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--mode', 'stream', '--window', ''], 'invalid --window ""'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--streams', '4'], 'invalid --streams in unary mode (the default): --streams applies only to --mode stream; add --mode stream'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--mode', 'unary', '--window', '8'], 'invalid --window with --mode unary: --window applies only to --mode stream'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--mode', 'stream', '--concurrency', '8'], 'invalid --concurrency with --mode stream: --concurrency applies only to --mode unary; set the appends in flight with --streams and --window'],
  ['bench', runBench, ['--target', '127.0.0.1:5000', '--pids', '12,abc'], 'invalid --pids "12,abc": expected PID[,PID...]'],
  ['status', runStatus, [], 'missing --http: expected HOST:PORT[,HOST:PORT...]'],
  ['status', runStatus, ['--http', '127.0.0.1:6001,:6002'], 'invalid --http ":6002": expected HOST:PORT'],
  ['status', runStatus, ['--http', 'https://127.0.0.1:6001'], 'invalid --http "https://127.0.0.1:6001": expected HOST:PORT or http://HOST:PORT[/status]'],
  ['status', runStatus, ['--http', '127.0.0.1:6001', '--watch', '0'], 'invalid --watch "0": expected an integer from 1 to'],
];

for (const [name, command, argv, expected] of invalidCases) {
  test(`${name} ${argv.join(' ')} exits 2`, async () => {
    const outcome = await runCaptured(command, argv);
    assert.is(outcome.exitCode, 2, outcome.stderr);
    assert.ok(outcome.stderr.includes(expected), `stderr: ${outcome.stderr}`);
    assert.ok(outcome.stderr.startsWith(`replog ${name}: `), `stderr: ${outcome.stderr}`);
    assert.is(outcome.stdout, '');
  });
}

for (const [name, command] of [['send', runSend], ['bench', runBench], ['status', runStatus]] as const) {
  test(`${name} --help exits 0`, async () => {
    const outcome = await runCaptured(command, ['--help']);
    assert.is(outcome.exitCode, 0, outcome.stderr);
    assert.ok(outcome.stdout.startsWith(`Usage: replog ${name} `), outcome.stdout);
    assert.is(outcome.stderr, '');
  });
}

test('send rejects --prefix over limit', async () => {
  // 65,536 bytes of ASCII, and 32,768 two-byte characters (é) with --count.
  const argvs = [
    ['--target', '127.0.0.1:5000', '--prefix', 'x'.repeat(65_536)],
    ['--target', '127.0.0.1:5000', '--count', '3', '--prefix', '\u00e9'.repeat(32_768)],
  ];
  for (const argv of argvs) {
    const outcome = await runCaptured(runSend, argv);
    assert.is(outcome.exitCode, 2, outcome.stderr);
    assert.is(
      outcome.stderr,
      'replog send: invalid --prefix: 65536 UTF-8 bytes; expected at most 65535, because a valueset is at most ' +
        '65536 UTF-8 bytes and the prefix is followed by at least one byte\n' +
        'Run "replog send --help" for the flags.\n',
    );
    assert.is(outcome.stdout, '');
  }
});

test('send --count leaves room for numbers', async () => {
  const outcome = await runCaptured(runSend, ['--target', '127.0.0.1:5000', '--count', '12', '--prefix', 'x'.repeat(65_535)]);
  assert.is(outcome.exitCode, 2, outcome.stderr);
  assert.match(outcome.stderr, /invalid --prefix: 65535 UTF-8 bytes; expected at most 65534 with --count 12, because the numbers up to 12 add 2 bytes/);
  const flags = parseSendFlags(['--target', '127.0.0.1:5000', '--count', '12', '--prefix', 'x'.repeat(65_534)]);
  assert.is(flags?.prefix?.length, 65_534);
});

test('send accepts longest --prefix', () => {
  const prefix = 'x'.repeat(65_535);
  const flags = parseSendFlags(['--target', '127.0.0.1:5000', '--prefix', prefix]);
  assert.is(flags?.prefix, prefix);
});

test('send --help states append order', async () => {
  const outcome = await runCaptured(runSend, ['--help']);
  const text = outcome.stdout.replace(/\s+/g, ' ');
  assert.ok(text.includes('--concurrency N appends in flight (default 16).'), text);
  assert.ok(text.includes('Above 1, valuesets may be stored in another order than read'), text);
  assert.ok(text.includes('1 keeps the order'), text);
});

test.run();
