// Seeded random schedules against the Raft core: message loss, duplication,
// reordering, partitions, restarts and compaction, with safety checked after
// every action and progress checked once the faults stop.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Entry, Message, NodeId, Ready } from '../../src/consensus/types';
import { bytes, MemoryStore, seededRandom, TestMember, testConfig } from './cluster';

const ids = ['a', 'b', 'c', 'd', 'e'];
/** Seeds per variant. Set CHAOS_SEEDS to run more. */
const seedCount = Number(process.env['CHAOS_SEEDS'] ?? 40);
const actionsPerSeed = 4000;

/** A five-member cluster with an unreliable network and a safety checker. */
class ChaosCluster {
  readonly members = new Map<NodeId, TestMember>();
  private network: Message[] = [];
  /** Ready batches taken but not yet persisted, oldest first: lost on restart. */
  private readonly unpersisted = new Map<NodeId, Ready[]>();
  /** Snapshot data received with snapshot messages, by member and `index/term`: lost on restart. */
  private readonly staged = new Map<NodeId, Map<string, readonly Entry[]>>();
  private readonly isolated = new Set<NodeId>();
  /** The entry each index was applied with on the first member that applied it. */
  private readonly appliedByIndex = new Map<number, Entry>();
  private readonly leaderByTerm = new Map<number, NodeId>();
  private readonly wasLeader = new Set<NodeId>();
  private proposals = 0;

  constructor(
    private readonly random: () => number,
    options: { readonly preVote: boolean; readonly checkQuorum: boolean },
  ) {
    ids.forEach((id, position) => {
      const seed = Math.floor(random() * 1e9) + position;
      const config = testConfig(id, ids, seed, { ...options, appendEntriesMax: 8, inflightAppendsMax: 3 });
      this.members.set(id, new TestMember(config, new MemoryStore()));
      this.unpersisted.set(id, []);
      this.staged.set(id, new Map());
    });
  }

  step(): void {
    const roll = this.random();
    if (roll < 0.35) this.deliverRandom();
    else if (roll < 0.5) this.persistRandom();
    else if (roll < 0.8) this.tickRandom();
    else if (roll < 0.9) this.proposeOnLeader();
    else if (roll < 0.93) this.togglePartition();
    else if (roll < 0.95) this.restartRandom();
    else if (roll < 0.97) this.compactRandom();
    else this.duplicateRandom();
    this.checkSafety();
  }

  /** Stops every fault and runs until all members applied the same, newest entries. */
  settle(): void {
    this.isolated.clear();
    for (let round = 0; round < 400; round += 1) {
      for (const id of ids) {
        this.member(id).raft.tick();
        this.flush(id);
        this.persistAll(id);
      }
      while (this.network.length > 0) {
        const message = this.network.shift() as Message;
        this.deliver(message);
        this.persistAll(message.to);
      }
      this.checkSafety();
      if (round % 50 === 49) this.proposeOnLeader();
    }
  }

  appliedIndexes(): number[] {
    return ids.map((id) => this.member(id).store.applied.length);
  }

  private member(id: NodeId): TestMember {
    return this.members.get(id) as TestMember;
  }

  private pick<T>(values: readonly T[]): T {
    return values[Math.floor(this.random() * values.length)] as T;
  }

  /** Takes every Ready of the member. They are persisted later, by persistRandom or settle. */
  private flush(id: NodeId): void {
    const raft = this.member(id).raft;
    const queue = this.unpersisted.get(id) as Ready[];
    while (raft.hasReady()) queue.push(raft.ready());
  }

  /** Persists the member's oldest Ready, sends its messages and advances. */
  private persistOldest(id: NodeId): boolean {
    const ready = (this.unpersisted.get(id) as Ready[]).shift();
    if (ready === undefined) return false;
    const member = this.member(id);
    const key = ready.snapshot === null ? '' : `${ready.snapshot.index}/${ready.snapshot.term}`;
    member.store.perform(ready, this.staged.get(id)?.get(key));
    this.network.push(...ready.messages);
    member.raft.advance(ready);
    this.flush(id);
    return true;
  }

  private persistAll(id: NodeId): void {
    while (this.persistOldest(id));
  }

  private persistRandom(): void {
    const id = this.pick(ids);
    const count = 1 + Math.floor(this.random() * 3);
    for (let i = 0; i < count; i += 1) this.persistOldest(id);
  }

  private deliverRandom(): void {
    if (this.network.length === 0) return;
    const position = Math.floor(this.random() * this.network.length);
    const [message] = this.network.splice(position, 1);
    if (this.random() < 0.1) return;
    this.deliver(message as Message);
  }

  private deliver(message: Message): void {
    if (this.isolated.has(message.from) || this.isolated.has(message.to)) return;
    const target = this.member(message.to);
    if (message.type === 'snapshot') {
      const data = this.member(message.from).store.applied.slice(0, message.snapshot.index);
      this.staged.get(message.to)?.set(`${message.snapshot.index}/${message.snapshot.term}`, data);
    }
    target.raft.step(message);
    this.flush(message.to);
  }

  private duplicateRandom(): void {
    if (this.network.length > 0) this.network.push(this.pick(this.network));
  }

  private tickRandom(): void {
    const id = this.pick(ids);
    this.member(id).raft.tick();
    this.flush(id);
  }

  private proposeOnLeader(): void {
    for (const id of ids) {
      const result = this.member(id).raft.propose([bytes(`p${this.proposals}`)]);
      if (!result.ok) continue;
      this.proposals += 1;
      this.flush(id);
    }
  }

  private togglePartition(): void {
    if (this.isolated.size > 0) {
      this.isolated.clear();
      return;
    }
    const count = 1 + Math.floor(this.random() * 2);
    for (let i = 0; i < count; i += 1) this.isolated.add(this.pick(ids));
  }

  private restartRandom(): void {
    const member = this.member(this.pick(ids));
    member.restart();
    this.unpersisted.set(member.config.id, []);
    this.staged.get(member.config.id)?.clear();
    this.wasLeader.delete(member.config.id);
  }

  private compactRandom(): void {
    const member = this.member(this.pick(ids));
    const status = member.raft.status();
    if (status.appliedIndex <= status.snapshotIndex) return;
    const compaction = member.raft.compact(status.appliedIndex, Math.floor(this.random() * 4));
    member.store.snapshot = compaction.snapshot;
    member.store.logStart = compaction.logStart;
    member.store.entries = member.store.entries.filter((e) => e.index > compaction.logStart.index);
  }

  private checkSafety(): void {
    for (const id of ids) {
      this.checkApplied(id);
      this.checkLeader(id);
    }
  }

  /** State machine safety: every member applies the same entry at each index. */
  private checkApplied(id: NodeId): void {
    const applied = this.member(id).store.applied;
    const status = this.member(id).raft.status();
    if (status.appliedIndex !== applied.length) {
      throw new Error(`${id}: core applied ${status.appliedIndex}, state machine ${applied.length}`);
    }
    for (let index = Math.max(1, applied.length - 20); index <= applied.length; index += 1) {
      const entry = applied[index - 1] as Entry;
      const first = this.appliedByIndex.get(index);
      if (first === undefined) this.appliedByIndex.set(index, entry);
      else if (first.term !== entry.term || first.data !== entry.data) {
        throw new Error(`${id} applied a different entry at ${index}: term ${entry.term}, first ${first.term}`);
      }
    }
  }

  /** Election safety, and leader completeness for a member that just became leader. */
  private checkLeader(id: NodeId): void {
    const raft = this.member(id).raft;
    const status = raft.status();
    if (status.role !== 'leader') {
      this.wasLeader.delete(id);
      return;
    }
    const other = this.leaderByTerm.get(status.term);
    if (other !== undefined && other !== id) throw new Error(`two leaders in term ${status.term}: ${other} and ${id}`);
    this.leaderByTerm.set(status.term, id);
    if (this.wasLeader.has(id)) return;
    this.wasLeader.add(id);
    for (const [index, entry] of this.appliedByIndex) {
      const term = raft.termAt(index);
      if (index > status.lastLogIndex) throw new Error(`new leader ${id} lacks committed entry ${index}`);
      if (term !== undefined && term !== entry.term) throw new Error(`new leader ${id} has term ${term} at ${index}`);
    }
  }
}

const variants = [
  { preVote: true, checkQuorum: true },
  { preVote: true, checkQuorum: false },
  { preVote: false, checkQuorum: true },
  { preVote: false, checkQuorum: false },
];

for (const options of variants) {
  test(`random faults, preVote ${options.preVote}, checkQuorum ${options.checkQuorum}`, () => {
    for (let seed = 1; seed <= seedCount; seed += 1) {
      const cluster = new ChaosCluster(seededRandom(seed), options);
      try {
        for (let i = 0; i < actionsPerSeed; i += 1) cluster.step();
        cluster.settle();
      } catch (error) {
        throw new Error(`seed ${seed}: ${(error as Error).message}`);
      }
      const applied = cluster.appliedIndexes();
      assert.ok(
        applied.every((index) => index === applied[0]),
        `seed ${seed}: applied indexes differ after settling: ${applied.join(',')}`,
      );
      assert.ok((applied[0] as number) > 0, `seed ${seed}: nothing applied`);
    }
  });
}

test.run();
