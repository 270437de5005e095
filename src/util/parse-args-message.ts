/**
 * Returns the message of an error from node:util's parseArgs in the wording
 * of replog's other flag errors, such as `unknown flag --colour` or `missing
 * value for --count`. Other errors keep their own message.
 */
export function parseArgsMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  // parseArgs quotes the flag or argument, as in "Unknown option '--colour'".
  const quoted = /'([^']*)'/.exec(message)?.[1];
  if (quoted === undefined) return message;
  const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${flag}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return message.includes('argument missing') ? `missing value for ${flag}` : `${flag} takes no value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted)}: expected flags only`;
    default:
      return message;
  }
}
