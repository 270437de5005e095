// Which appends of the experiment were acknowledged, and at which index, and
// the check that every member stores each of them at that index. Valuesets
// are `exp-<run>-p<phase>-<sequence>-` padded, so a message read back names the
// append it came from; the per-sequence tables are typed arrays, not maps.
import { randomBytes } from 'node:crypto';
import type { StoredMessage } from '../client/types';
import type { MessageObserver } from '../verify/verify-cluster';

/** Length of every experiment valueset. */
export const valuesetLength = 100;

/** Makes and recognizes the valuesets of one run. */
export class ValuesetScheme {
  readonly runTag = randomBytes(4).toString('hex');
  private readonly pattern = new RegExp(`^exp-${this.runTag}-p(\\d+)-(\\d+)-`);

  make(phase: number, sequence: number): string {
    return `exp-${this.runTag}-p${phase}-${sequence}-`.padEnd(valuesetLength, 'x');
  }

  /** The phase and sequence of one of this run's valuesets, or null. */
  parse(valueset: string): { phase: number; sequence: number } | null {
    const match = this.pattern.exec(valueset);
    return match ? { phase: Number(match[1]), sequence: Number(match[2]) } : null;
  }
}

/** Acknowledged indexes of one phase, by sequence number; 0 = not acknowledged. */
export class AckLog {
  private indexes = new Float64Array(4096);
  private highest = -1;
  acknowledged = 0;

  record(sequence: number, index: number): void {
    if (sequence >= this.indexes.length) {
      let size = this.indexes.length;
      while (size <= sequence) size *= 2;
      const grown = new Float64Array(size);
      grown.set(this.indexes);
      this.indexes = grown;
    }
    if (this.indexes[sequence] === 0) this.acknowledged += 1;
    this.indexes[sequence] = index;
    this.highest = Math.max(this.highest, sequence);
  }

  /** Acknowledged index of `sequence`, 0 when it was not acknowledged. */
  indexOf(sequence: number): number {
    return sequence < this.indexes.length ? this.indexes[sequence]! : 0;
  }

  /** One more than the highest sequence recorded. */
  get length(): number {
    return this.highest + 1;
  }
}

/** How one member compares with the acknowledgements. */
export interface AckCheck {
  /** Acknowledged appends the member does not store at the acknowledged index. */
  readonly missing: number;
  /** Of those, stored at another index (should never happen). */
  readonly misplaced: number;
  /** Stored appends of this run whose client saw no acknowledgement (e.g. a reply lost to a kill). */
  readonly storedUnacknowledged: number;
  /** A few missing ones, for the report. */
  readonly examples: readonly { readonly phase: number; readonly sequence: number; readonly index: number }[];
}

/**
 * A verify observer that checks, in the same pass as verify, that every member
 * stores every acknowledged append of `logs` (phase number -> log).
 */
export class AckChecker implements MessageObserver {
  private found: Map<number, Uint8Array>[] = [];
  private misplaced: number[] = [];
  private unacknowledged: number[] = [];

  constructor(
    private readonly scheme: ValuesetScheme,
    private readonly logs: ReadonlyMap<number, AckLog>,
  ) {}

  begin(memberCount: number): void {
    this.found = Array.from({ length: memberCount }, () => new Map());
    this.misplaced = new Array<number>(memberCount).fill(0);
    this.unacknowledged = new Array<number>(memberCount).fill(0);
  }

  message(member: number, message: StoredMessage): void {
    const id = this.scheme.parse(message.valueset);
    if (id === null) return;
    const log = this.logs.get(id.phase);
    const acknowledgedAt = log?.indexOf(id.sequence) ?? 0;
    if (!log || acknowledgedAt === 0) {
      this.unacknowledged[member]! += 1;
      return;
    }
    if (acknowledgedAt !== message.index) {
      this.misplaced[member]! += 1;
      return;
    }
    const perPhase = this.found[member]!;
    let bits = perPhase.get(id.phase);
    if (!bits || bits.length < log.length) {
      const grown = new Uint8Array(Math.max(log.length, 1024));
      if (bits) grown.set(bits);
      bits = grown;
      perPhase.set(id.phase, bits);
    }
    bits[id.sequence] = 1;
  }

  /** The result for member `member` after a pass. */
  result(member: number, examplesMax = 5): AckCheck {
    let missing = 0;
    const examples: { phase: number; sequence: number; index: number }[] = [];
    for (const [phase, log] of this.logs) {
      const bits = this.found[member]?.get(phase);
      for (let sequence = 0; sequence < log.length; sequence++) {
        const index = log.indexOf(sequence);
        if (index === 0 || bits?.[sequence] === 1) continue;
        missing += 1;
        if (examples.length < examplesMax) examples.push({ phase, sequence, index });
      }
    }
    return {
      missing,
      misplaced: this.misplaced[member] ?? 0,
      storedUnacknowledged: this.unacknowledged[member] ?? 0,
      examples,
    };
  }
}
