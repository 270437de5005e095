import type { Entry, HardState, SnapshotMeta } from '../consensus/types';
import type { RaftLogStore } from '../storage/types';
import { InvariantViolation } from './violation';

const EMPTY_META: SnapshotMeta = { index: 0, term: 0 };
const INITIAL_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

/** A log write that is in the page cache but not yet fsync'd. */
export interface UnsyncedWrite {
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
}

/**
 * The Raft state of one simulated member. Like SqliteRaftLog, it takes a
 * write in two steps: write() puts it in the page cache and sync() makes it
 * durable, while persist(), installSnapshot() and compact() are durable when
 * they return. Every read returns the durable state only, so the invariant
 * checker never counts an unsynced write as stored. A crash keeps or drops
 * the unsynced write (see sync() and dropUnsynced()). Writes that
 * break the storage contract throw an InvariantViolation, because only a core
 * bug can produce them.
 */
export class MemoryLogStore implements RaftLogStore {
  private hardState: HardState = INITIAL_HARD_STATE;
  private snapshot: SnapshotMeta = EMPTY_META;
  private logStart: SnapshotMeta = EMPTY_META;
  private entries: Entry[] = [];
  /** The write awaiting its fsync. There is at most one, because the driver waits for it before the next Ready. */
  private unsynced: UnsyncedWrite | null = null;

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
    this.write(entries, hardState);
    this.sync();
  }

  /**
   * Writes entries and hard state without making them durable. The write is
   * checked against the storage contract now, and stored by sync().
   */
  write(entries: readonly Entry[], hardState: HardState | null): void {
    if (this.unsynced !== null) this.fail('wrote again before the previous write was fsync\'d');
    if (entries.length > 0) this.checkEntries(entries);
    if (hardState !== null) this.checkHardState(hardState);
    this.unsynced = { entries: entries.slice(), hardState };
  }

  get hasUnsynced(): boolean {
    return this.unsynced !== null;
  }

  /** Makes the unsynced write durable and returns it, or null when there is none. */
  sync(): UnsyncedWrite | null {
    const write = this.unsynced;
    if (write === null) return null;
    this.unsynced = null;
    if (write.entries.length > 0) this.storeEntries(write.entries);
    if (write.hardState !== null) this.hardState = write.hardState;
    return write;
  }

  /** Loses the unsynced write, as a machine crash may. */
  dropUnsynced(): void {
    this.unsynced = null;
  }

  installSnapshot(snapshot: SnapshotMeta): void {
    this.failIfUnsynced('installed a snapshot');
    this.snapshot = snapshot;
    this.logStart = snapshot;
    this.entries = [];
  }

  compact(snapshot: SnapshotMeta, logStart: SnapshotMeta): void {
    this.failIfUnsynced('compacted');
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

  /** Reads durable entries back. A missing first entry is a core bug, because the core reads only what it saw persisted. */
  readEntries(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    const entries: Entry[] = [];
    let bytes = 0;
    for (let index = fromIndex; index <= toIndex; index += 1) {
      const entry = this.entryAt(index);
      if (entry === undefined || (entries.length > 0 && bytes + entry.data.byteLength > bytesMax)) break;
      entries.push(entry);
      bytes += entry.data.byteLength;
    }
    if (entries.length === 0) this.fail(`read entry ${fromIndex}, which is not stored`);
    return entries;
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

  private checkEntries(entries: readonly Entry[]): void {
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
  }

  private storeEntries(entries: readonly Entry[]): void {
    const first = (entries[0] as Entry).index;
    this.entries = this.entries.slice(0, first - this.logStart.index - 1).concat(entries);
  }

  private checkHardState(next: HardState): void {
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
  }

  /**
   * Throws when a write is still unsynced. SqliteRaftLog's compact() and
   * installSnapshot() fsync the WAL, which makes an earlier write durable
   * too, so the simulator syncs it first and reports that to the checker.
   */
  private failIfUnsynced(action: string): void {
    if (this.unsynced !== null) this.fail(`${action} with a write not yet fsync'd; sync it first`);
  }

  private fail(detail: string): never {
    throw new InvariantViolation('durable state', `${this.memberId}: ${detail}`);
  }
}
