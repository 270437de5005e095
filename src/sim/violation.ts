/**
 * A broken safety or liveness property found by the simulator. The run stops
 * at the first one and reports it with the seed and the trace that led to it.
 */
export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    readonly detail: string,
  ) {
    super(`${invariant} violated: ${detail}`);
    this.name = 'InvariantViolation';
  }
}
