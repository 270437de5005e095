import { Raft } from '../consensus/raft';
import type { Entry, Message, NodeId, RaftConfig, Ready, RestoredState, SnapshotMeta } from '../consensus/types';
import type { CrashPoint } from './driver';
import { MemoryLogStore } from './log-store';
import { InvariantViolation } from './violation';

/** A Ready that was started and waits for the fsync of its log write before it finishes. */
export interface InflightReady {
  readonly ready: Ready;
  /** The leader's messages that went out before the write; the rest go out at finish. */
  readonly early: ReadonlySet<Message>;
  /** The crash point drawn for this Ready, reached at finish, or null for none. */
  readonly crashAt: CrashPoint | null;
  /** How many of the committed entries were applied before the write, being on disk already. */
  readonly appliedEarly: number;
}

/**
 * One simulated member: the real core while it is up, and the state that
 * survives its crashes. The state machine is the list of applied entries, so
 * entry i sits at position i - 1 and the applied index is the list's length.
 */
export class Member {
  store: MemoryLogStore;
  /** Durable, like the message store of a real member. */
  applied: Entry[] = [];
  core: Raft | null = null;
  /** Starts at 0 and grows with every restart; events of older ones are dropped. */
  incarnation = 0;
  /** Time units between two ticks of this member, to skew its clock. */
  tickPeriodUnits: number;
  /**
   * Set from a wipe until the core votes again, and durable like replog's
   * `rejoining` file: the member starts with RaftConfig.holdVotes meanwhile.
   */
  rejoining = false;
  /** Set while a deferred Ready event is scheduled. */
  readyScheduled = false;
  /** The started Ready whose fsync is pending; no other Ready starts meanwhile. */
  inflight: InflightReady | null = null;
  /** Snapshot data received with snapshot messages, by `index/term`; lost on crash. */
  private readonly stagedSnapshots = new Map<string, readonly Entry[]>();

  constructor(
    readonly id: NodeId,
    tickPeriodUnits: number,
  ) {
    this.store = new MemoryLogStore(id);
    this.tickPeriodUnits = tickPeriodUnits;
  }

  get isUp(): boolean {
    return this.core !== null;
  }

  /** Builds a fresh core from the durable state, as a restarted process does. */
  start(config: RaftConfig): Raft {
    if (this.store.hasUnsynced) {
      throw new InvariantViolation('durable state', `${this.id} started with a write neither fsync'd nor dropped`);
    }
    this.incarnation += 1;
    this.stagedSnapshots.clear();
    this.readyScheduled = false;
    this.inflight = null;
    this.core = new Raft(config, this.restoredState());
    return this.core;
  }

  /**
   * Drops the core and everything volatile; the store and applied list stay.
   * The caller first keeps or drops an unsynced write.
   */
  crash(): void {
    this.core = null;
    this.stagedSnapshots.clear();
    this.readyScheduled = false;
    this.inflight = null;
  }

  /**
   * Loses the disk of a member that is down: its log, hard state and state
   * machine are empty, as after replog's data folder was deleted, and it
   * rejoins with its votes withheld.
   */
  wipe(): void {
    if (this.isUp) throw new InvariantViolation('driver', `${this.id} wiped while up`);
    this.store = new MemoryLogStore(this.id);
    this.applied = [];
    this.rejoining = true;
  }

  restoredState(): RestoredState {
    const loaded = this.store.load();
    return {
      hardState: loaded.hardState,
      snapshot: loaded.snapshot,
      logStart: loaded.logStart,
      entries: loaded.entries,
      appliedIndex: this.applied.length,
    };
  }

  stageSnapshot(meta: SnapshotMeta, data: readonly Entry[]): void {
    this.stagedSnapshots.set(snapshotKey(meta), data);
  }

  takeStagedSnapshot(meta: SnapshotMeta): readonly Entry[] | undefined {
    const data = this.stagedSnapshots.get(snapshotKey(meta));
    this.stagedSnapshots.delete(snapshotKey(meta));
    return data;
  }

  /** Returns the entry at `index` from the log or, when compacted, the state machine. */
  entryAt(index: number): Entry | undefined {
    const stored = this.store.entryAt(index);
    if (stored !== undefined) return stored;
    if (index > this.store.currentSnapshot().index) return undefined;
    return this.applied[index - 1];
  }
}

function snapshotKey(meta: SnapshotMeta): string {
  return `${meta.index}/${meta.term}`;
}
