import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidAddressError, parseHostPortList, toChannelTarget } from '../client/target';
import { joinNegativeValues } from '../util/negative-flag-values';
import { parseArgsMessage } from '../util/parse-args-message';

/** Invalid command-line input; the command prints the message and exits 2. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

/** Exit status of a command whose flags are invalid. */
export const invalidFlagsExitCode = 2;

/** Standard streams of a command; tests pass their own. */
export interface CliIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean };
}

export const processIo: CliIo = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
};

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** Parse `argv` strictly (unknown flags and stray arguments are errors). */
export function parseFlags<T extends OptionsConfig>(argv: readonly string[], options: T) {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new FlagError(parseArgsMessage(error));
  }
}

/**
 * Parse an integer flag value in `[min, max]`; `undefined` gives `fallback`.
 * The error names the flag and the expected range.
 */
export function parseIntegerFlag(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new FlagError(`invalid --${flag} "${text}": expected an integer from ${min} to ${max}`);
  }
  return value;
}

/** Parse a required `HOST:PORT[,HOST:PORT...]` flag into a channel target. */
export function parseTargetFlag(flag: string, text: string | undefined): string {
  if (text === undefined) {
    throw new FlagError(`missing --${flag}: expected HOST:PORT[,HOST:PORT...]`);
  }
  return withFlagName(flag, () => {
    parseHostPortList(text);
    return toChannelTarget(text);
  });
}

/** Run an address parser, turning its InvalidAddressError into a FlagError naming `flag`. */
export function withFlagName<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof InvalidAddressError)) throw error;
    throw new FlagError(`invalid --${flag} "${error.address}": ${error.expected}`);
  }
}

/** Parse a comma-separated list of process ids. */
export function parsePidListFlag(flag: string, text: string | undefined): number[] {
  if (text === undefined) return [];
  const parts = text.split(',').map((part) => part.trim());
  if (parts.some((part) => !/^[1-9]\d{0,9}$/.test(part))) {
    throw new FlagError(`invalid --${flag} "${text}": expected PID[,PID...] with positive integers`);
  }
  return parts.map(Number);
}

/**
 * Run a command body, turning a FlagError into a message on stderr and exit
 * status 2, and any other error into a message and exit status 1. `program`
 * is how the user starts the command, e.g. `replog send`.
 */
export async function runCommand(
  program: string,
  io: CliIo,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof FlagError) {
      io.stderr.write(`${program}: ${error.message}\nRun "${program} --help" for the flags.\n`);
      return invalidFlagsExitCode;
    }
    io.stderr.write(`${program}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
