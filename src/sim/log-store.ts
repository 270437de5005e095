import type { Entry, HardState, SnapshotMeta } from '../consensus/types';
import type { RaftLogStore } from '../storage/types';
import { InvariantViolation } from './violation';

const EMPTY_META: SnapshotMeta = { index: 0, term: 0 };
const INITIAL_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

/**
 * The durable Raft state of one simulated member. Whatever a method stored
 * survives a crash of the member; the simulator loses only what it never
 * handed to this store. Writes that break the storage contract throw an
 * InvariantViolation, because only a core bug can produce them.
 */
export class MemoryLogStore implements RaftLogStore {
  private hardState: HardState = INITIAL_HARD_STATE;
  private snapshot: SnapshotMeta = EMPTY_META;
  private logStart: SnapshotMeta = EMPTY_META;
  private entries: Entry[] = [];

  constructor(private readonly memberId: string) {}

  load(): {
    hardState: HardState;
    snapshot: SnapshotMeta;
    logStart: SnapshotMeta;
    entries: Entry[];
  } {
    return {
      hardState: this.hardState,
      snapshot: this.snapshot,
      logStart: this.logStart,
      entries: this.entries.slice(),
    };
  }

  persist(entries: readonly Entry[], hardState: HardState | null): void {
    if (entries.length > 0) this.writeEntries(entries);
    if (hardState !== null) this.writeHardState(hardState);
  }

  installSnapshot(snapshot: SnapshotMeta): void {
    this.snapshot = snapshot;
    this.logStart = snapshot;
    this.entries = [];
  }

  compact(snapshot: SnapshotMeta, logStart: SnapshotMeta): void {
    if (snapshot.index < this.snapshot.index) {
      this.fail(`compacted to snapshot ${snapshot.index} below snapshot ${this.snapshot.index}`);
    }
    if (logStart.index > snapshot.index || logStart.index < this.logStart.index) {
      this.fail(`log start ${logStart.index} outside [${this.logStart.index}, ${snapshot.index}]`);
    }
    const dropCount = logStart.index - this.logStart.index;
    const startTerm = this.termAt(logStart.index);
    if (startTerm !== logStart.term) {
      this.fail(`log start ${logStart.index}/${logStart.term} but stored term ${String(startTerm)}`);
    }
    this.entries = this.entries.slice(dropCount);
    this.snapshot = snapshot;
    this.logStart = logStart;
  }

  close(): void {}

  lastIndex(): number {
    return this.logStart.index + this.entries.length;
  }

  firstIndex(): number {
    return this.logStart.index + 1;
  }

  currentHardState(): HardState {
    return this.hardState;
  }

  currentSnapshot(): SnapshotMeta {
    return this.snapshot;
  }

  currentLogStart(): SnapshotMeta {
    return this.logStart;
  }

  /** Returns the stored entry at `index`, or undefined when compacted or missing. */
  entryAt(index: number): Entry | undefined {
    return this.entries[index - this.logStart.index - 1];
  }

  /** Returns the term at `index`, including the log start's, or undefined. */
  termAt(index: number): number | undefined {
    if (index === this.logStart.index) return this.logStart.term;
    return this.entryAt(index)?.term;
  }

  private writeEntries(entries: readonly Entry[]): void {
    const first = (entries[0] as Entry).index;
    if (first <= this.logStart.index) {
      this.fail(`wrote entry ${first} at or below log start ${this.logStart.index}`);
    }
    if (first > this.lastIndex() + 1) {
      this.fail(`wrote entry ${first} after last index ${this.lastIndex()}: a gap`);
    }
    entries.forEach((entry, offset) => {
      if (entry.index !== first + offset) this.fail(`entries not contiguous at ${entry.index}`);
    });
    this.entries = this.entries.slice(0, first - this.logStart.index - 1).concat(entries);
  }

  private writeHardState(next: HardState): void {
    const previous = this.hardState;
    if (next.term < previous.term) {
      this.fail(`persisted term ${next.term} below ${previous.term}`);
    }
    if (next.term === previous.term && previous.vote !== null && next.vote !== previous.vote) {
      this.fail(`changed vote in term ${next.term} from ${previous.vote} to ${String(next.vote)}`);
    }
    if (next.commit < previous.commit) {
      this.fail(`persisted commit ${next.commit} below ${previous.commit}`);
    }
    this.hardState = next;
  }

  private fail(detail: string): never {
    throw new InvariantViolation('durable state', `${this.memberId}: ${detail}`);
  }
}
