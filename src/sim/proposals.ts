import { EntryType, type Entry, type NodeId } from '../consensus/types';
import { entryKey } from './invariants';
import { InvariantViolation } from './violation';

/** A value a leader accepted, at the index and term propose() returned. */
export interface AcceptedProposal {
  readonly value: string;
  readonly memberId: NodeId;
  readonly index: number;
  readonly term: number;
  /** Set once the proposing member applied the entry: the client's reply. */
  acknowledged: boolean;
}

export function encodeValue(value: string): Uint8Array {
  return new Uint8Array(Buffer.from(value, 'utf8'));
}

function decodeValue(data: Uint8Array): string {
  return Buffer.from(data).toString('utf8');
}

/**
 * The client side of a run: which values were accepted where, and which were
 * acknowledged. A client is acknowledged only when the member that accepted
 * the value applies it at the index and term it was given, as replog's append
 * replies only after its own member applied the entry.
 */
export class ProposalLedger {
  private readonly accepted = new Map<string, AcceptedProposal>();
  private nextValueNumber = 1;

  /** Returns a value never proposed before in this run. */
  nextValue(): string {
    const value = `v${this.nextValueNumber}`;
    this.nextValueNumber += 1;
    return value;
  }

  recordAccepted(memberId: NodeId, values: readonly string[], firstIndex: number, term: number): void {
    values.forEach((value, offset) => {
      this.accepted.set(value, { value, memberId, index: firstIndex + offset, term, acknowledged: false });
    });
  }

  /** Marks the entry's value acknowledged when its proposer applied it where accepted. */
  noteApplied(memberId: NodeId, entry: Entry): void {
    if (entry.data.length === 0) return;
    const proposal = this.accepted.get(decodeValue(entry.data));
    if (proposal === undefined || proposal.memberId !== memberId) return;
    if (proposal.index === entry.index && proposal.term === entry.term) proposal.acknowledged = true;
  }

  all(): readonly AcceptedProposal[] {
    return [...this.accepted.values()];
  }

  acknowledgedCount(): number {
    return this.all().filter((proposal) => proposal.acknowledged).length;
  }

  /** Checks that every acknowledged value is in the final committed log at its index. */
  checkFinalLog(committedKeyAt: (index: number) => string | undefined): void {
    for (const proposal of this.accepted.values()) {
      if (!proposal.acknowledged) continue;
      const key = committedKeyAt(proposal.index);
      const expected = entryKey({ index: proposal.index, term: proposal.term, type: EntryType.Normal, data: encodeValue(proposal.value) });
      if (key !== expected) {
        throw new InvariantViolation(
          'acknowledged values kept',
          `${proposal.value} acknowledged at ${proposal.index}/${proposal.term} but the final log has ${String(key)}`,
        );
      }
    }
  }
}
