// In-process test cluster for the Raft core: members with in-memory storage,
// a FIFO network that the test drives by hand, and partitions.
import { Raft } from '../../src/consensus/raft';
import type {
  Entry,
  HardState,
  Message,
  NodeId,
  RaftConfig,
  Ready,
  RestoredState,
  SnapshotMeta,
} from '../../src/consensus/types';

/** Returns a seeded generator of uniform numbers in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type ConfigOverrides = Partial<Omit<RaftConfig, 'id' | 'peers'>>;

export function testConfig(id: NodeId, peers: readonly NodeId[], seed: number, overrides: ConfigOverrides = {}): RaftConfig {
  return {
    id,
    peers,
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 2,
    preVote: true,
    checkQuorum: true,
    appendEntriesMax: 64,
    appendBytesMax: 1024 * 1024,
    inflightAppendsMax: 4,
    random: seededRandom(seed),
    ...overrides,
  };
}

export function emptyRestoredState(): RestoredState {
  return {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: { index: 0, term: 0 },
    logStart: { index: 0, term: 0 },
    entries: [],
    appliedIndex: 0,
  };
}

/** Builds Normal entries with the given terms, starting at `firstIndex`. */
export function entriesWithTerms(firstIndex: number, terms: readonly number[]): Entry[] {
  return terms.map((term, offset) => ({ index: firstIndex + offset, term, type: 0, data: new Uint8Array([offset & 0xff]) }));
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** The durable state of one member: what a real member keeps on disk. */
export class MemoryStore {
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  snapshot: SnapshotMeta = { index: 0, term: 0 };
  logStart: SnapshotMeta = { index: 0, term: 0 };
  entries: Entry[] = [];
  /** The state machine: every applied entry, entry i at position i - 1. */
  applied: Entry[] = [];

  static from(restored: RestoredState, applied: Entry[]): MemoryStore {
    const store = new MemoryStore();
    store.hardState = restored.hardState;
    store.snapshot = restored.snapshot;
    store.logStart = restored.logStart;
    store.entries = [...restored.entries];
    store.applied = applied;
    return store;
  }

  restoredState(): RestoredState {
    return {
      hardState: this.hardState,
      snapshot: this.snapshot,
      logStart: this.logStart,
      entries: [...this.entries],
      appliedIndex: this.applied.length,
    };
  }

  /** Performs steps 1, 2 and 4 of a Ready. `snapshotData` is the state machine the snapshot contains. */
  perform(ready: Ready, snapshotData: readonly Entry[] | undefined): void {
    if (ready.snapshot !== null) {
      if (snapshotData === undefined) throw new Error(`no snapshot data staged for index ${ready.snapshot.index}`);
      this.snapshot = ready.snapshot;
      this.logStart = ready.snapshot;
      this.entries = [];
      this.applied = snapshotData.slice(0, ready.snapshot.index);
    }
    const first = ready.entries[0];
    if (first !== undefined) {
      this.entries.length = Math.max(0, first.index - this.logStart.index - 1);
      this.entries.push(...ready.entries);
    }
    if (ready.hardState !== null) this.hardState = ready.hardState;
    for (const entry of ready.committedEntries) {
      if (entry.index !== this.applied.length + 1) {
        throw new Error(`applied entry ${entry.index} out of order after ${this.applied.length}`);
      }
      this.applied.push(entry);
    }
  }
}

export class TestMember {
  raft: Raft;
  readonly store: MemoryStore;
  /** Snapshot data staged when a snapshot message arrived, for the next Ready that installs it. */
  stagedSnapshot: readonly Entry[] | undefined;

  constructor(
    readonly config: RaftConfig,
    store: MemoryStore,
  ) {
    this.store = store;
    this.raft = new Raft(config, store.restoredState());
  }

  /** Drains every Ready: persists, applies and advances. Returns the messages to send. */
  persist(): Message[] {
    const messages: Message[] = [];
    while (this.raft.hasReady()) {
      const ready = this.raft.ready();
      this.store.perform(ready, this.stagedSnapshot);
      messages.push(...ready.messages);
      this.raft.advance(ready);
    }
    return messages;
  }

  restart(): void {
    this.stagedSnapshot = undefined;
    this.raft = new Raft(this.config, this.store.restoredState());
  }
}

/** Members with a FIFO network the test drives: tick, deliver, cut off and heal. */
export class TestCluster {
  readonly members = new Map<NodeId, TestMember>();
  /** Messages sent and not yet delivered or dropped. */
  queue: Message[] = [];
  /** Every message delivered so far, for counting round trips. */
  readonly delivered: Message[] = [];
  /** Returns the message to deliver, possibly altered, or null to drop it. Cut-off members drop first. */
  intercept: (message: Message) => Message | null = (message) => message;
  private readonly isolated = new Set<NodeId>();

  constructor(ids: readonly NodeId[], overrides: ConfigOverrides = {}, stores: ReadonlyMap<NodeId, MemoryStore> = new Map()) {
    ids.forEach((id, position) => {
      const store = stores.get(id) ?? new MemoryStore();
      this.members.set(id, new TestMember(testConfig(id, ids, 1000 + position, overrides), store));
    });
  }

  member(id: NodeId): TestMember {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  raft(id: NodeId): Raft {
    return this.member(id).raft;
  }

  /** Ticks the given members (all by default) `count` times, delivering after each tick. */
  tick(count: number, ids: readonly NodeId[] = [...this.members.keys()]): void {
    for (let i = 0; i < count; i += 1) {
      for (const id of ids) {
        this.raft(id).tick();
        this.flush(id);
      }
      this.deliver();
    }
  }

  /** Sends what the member's Ready batches hold. */
  flush(id: NodeId): void {
    this.queue.push(...this.member(id).persist());
  }

  /** Delivers queued messages, and the ones they cause, until the network is quiet. */
  deliver(stepsMax = 100_000): void {
    for (let steps = 0; this.queue.length > 0; steps += 1) {
      if (steps >= stepsMax) throw new Error(`network not quiet after ${stepsMax} messages`);
      this.deliverOne(this.queue.shift() as Message);
    }
  }

  deliverOne(sent: Message): void {
    if (this.isolated.has(sent.from) || this.isolated.has(sent.to)) return;
    const message = this.intercept(sent);
    if (message === null) return;
    const target = this.member(message.to);
    if (message.type === 'snapshot') {
      target.stagedSnapshot = this.member(message.from).store.applied.slice(0, message.snapshot.index);
    }
    this.delivered.push(message);
    target.raft.step(message);
    this.flush(message.to);
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  heal(): void {
    this.isolated.clear();
  }

  leaders(): NodeId[] {
    return [...this.members.keys()].filter((id) => this.raft(id).status().role === 'leader');
  }

  /** Ticks everyone until exactly one leader that is not cut off exists, and returns it. */
  electLeader(ticksMax = 200): NodeId {
    for (let i = 0; i < ticksMax; i += 1) {
      const leaders = this.leaders().filter((id) => !this.isolated.has(id));
      if (leaders.length === 1) return leaders[0] as NodeId;
      this.tick(1);
    }
    throw new Error(`no leader after ${ticksMax} ticks`);
  }

  /** Proposes on the leader and delivers until the network is quiet. */
  propose(leader: NodeId, texts: readonly string[]): number {
    const result = this.raft(leader).propose(texts.map(bytes));
    if (!result.ok) throw new Error(`${leader} is not the leader`);
    this.flush(leader);
    this.deliver();
    return result.firstIndex;
  }
}
