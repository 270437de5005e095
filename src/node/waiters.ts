import type { ApplyOutcome } from '../storage/types';
import { errors, ReplogError } from '../grpc/errors';

/** The result of an append, returned once the receiving member has applied it. */
export interface AppendResult {
  readonly index: number;
  readonly duplicate: boolean;
}

interface ProposalWaiter {
  readonly term: number;
  readonly startedMs: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: ReplogError) => void;
}

/**
 * Appends this member proposed as leader, by log index. An entry applied at
 * that index in the same term resolves its waiter. An entry of another term
 * means that a new leader replaced it, so the waiter is rejected and the
 * client may retry.
 */
export class ProposalWaiters {
  private readonly byIndex = new Map<number, ProposalWaiter>();

  get size(): number {
    return this.byIndex.size;
  }

  add(index: number, waiter: ProposalWaiter): void {
    this.byIndex.set(index, waiter);
  }

  /** Settles the waiter of an applied entry, if any; returns its start time. */
  settle(index: number, term: number, outcome: ApplyOutcome | undefined): number | undefined {
    const waiter = this.byIndex.get(index);
    if (!waiter) return undefined;
    this.byIndex.delete(index);
    if (waiter.term !== term) {
      waiter.reject(errors.entryOverwritten(index));
      return undefined;
    }
    waiter.resolve({ index: outcome?.storedIndex ?? index, duplicate: outcome?.duplicate ?? false });
    return waiter.startedMs;
  }

  /** Rejects waiters older than `deadlineMs` (a monotonic time) with `err`; returns how many. */
  expire(olderThanMs: number, err: ReplogError): number {
    let count = 0;
    for (const [index, waiter] of this.byIndex) {
      if (waiter.startedMs >= olderThanMs) continue;
      this.byIndex.delete(index);
      waiter.reject(err);
      count++;
    }
    return count;
  }

  /** Rejects every waiter at or below `index`, whose outcome a snapshot install hid. */
  rejectThrough(index: number, err: ReplogError): void {
    for (const [waiterIndex, waiter] of this.byIndex) {
      if (waiterIndex > index) continue;
      this.byIndex.delete(waiterIndex);
      waiter.reject(err);
    }
  }

  rejectAll(err: ReplogError): void {
    for (const waiter of this.byIndex.values()) waiter.reject(err);
    this.byIndex.clear();
  }
}

interface AppliedWaiter {
  readonly index: number;
  readonly resolve: () => void;
  readonly reject: (err: ReplogError) => void;
}

/**
 * Callers waiting until this member has applied a given index; kept sorted by
 * index, which mostly means appending, since indexes arrive in rising order.
 */
export class AppliedIndexWaiters {
  private readonly waiting: AppliedWaiter[] = [];

  get size(): number {
    return this.waiting.length;
  }

  wait(index: number, appliedIndex: number): Promise<void> {
    if (index <= appliedIndex) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let at = this.waiting.length;
      while (at > 0 && this.waiting[at - 1]!.index > index) at--;
      this.waiting.splice(at, 0, { index, resolve, reject });
    });
  }

  notify(appliedIndex: number): void {
    let count = 0;
    while (count < this.waiting.length && this.waiting[count]!.index <= appliedIndex) count++;
    if (count === 0) return;
    for (const waiter of this.waiting.splice(0, count)) waiter.resolve();
  }

  rejectAll(err: ReplogError): void {
    for (const waiter of this.waiting.splice(0)) waiter.reject(err);
  }
}
