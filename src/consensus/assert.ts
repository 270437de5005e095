/**
 * A broken invariant of the Raft core. It signals a bug in the core or in the
 * code that drives it, never bad input, so callers should let it crash the
 * member instead of catching it.
 */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

/**
 * Throws InvariantError naming `invariant` unless `condition` holds. `fields`
 * go into the message as JSON to show the values that broke it.
 */
export function assertInvariant(
  condition: boolean,
  invariant: string,
  fields?: Readonly<Record<string, unknown>>,
): asserts condition {
  if (condition) return;
  const detail = fields === undefined ? '' : ` ${JSON.stringify(fields)}`;
  throw new InvariantError(`invariant violated: ${invariant}${detail}`);
}
