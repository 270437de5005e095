import type { Message, NodeId, ProposeResult, RaftConfig, Ready, Role, SoftState } from '../consensus/types';
import { applyDuringSync, CRASH_POINTS, crashMember, finishInflightReady, handleReady, syncWrite, type CrashPoint, type DriverContext } from './driver';
import { EventQueue } from './event-queue';
import { InvariantChecker } from './invariants';
import { Member } from './member';
import { Network, TIME_UNITS_PER_TICK, type Envelope, type NetworkFaults } from './network';
import { encodeValue, ProposalLedger } from './proposals';
import { Rng } from './rng';
import { describeMessage, Trace } from './trace';
import { InvariantViolation } from './violation';

/** The core's settings in a simulated cluster; RaftConfig less id, peers and random. */
export interface CoreSettings {
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly appendEntriesMax: number;
  readonly appendBytesMax: number;
  readonly inflightAppendsMax: number;
  /** Applied entries that keep their data in memory; undefined keeps every entry's data. */
  readonly entryCacheMax?: number;
  /** Bytes of entry data in memory with an entry cache; undefined takes the core's default. */
  readonly entryCacheBytesMax?: number;
  /** Bytes of entry data in flight per follower; undefined sets no bound. */
  readonly inflightBytesMax?: number;
}

export const CORE_SETTINGS_DEFAULT: CoreSettings = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 2,
  preVote: true,
  checkQuorum: true,
  appendEntriesMax: 64,
  appendBytesMax: 64 * 1024,
  inflightAppendsMax: 4,
};

export interface ClusterOptions {
  readonly seed: number;
  /** 3 to 7 members, named n1, n2, and so on. */
  readonly memberCount: number;
  readonly core: CoreSettings;
  readonly faults: NetworkFaults;
  /** Probability that a member handles a Ready later, so that more input joins it. */
  readonly readyDeferRate: number;
  /**
   * Probability that a Ready which writes entries, term or vote waits for its
   * fsync in a separate event, as replog's Member does, so that messages,
   * ticks, proposals and compaction reach the member in between. The others
   * are handled in one event. Default 0.
   */
  readonly readySplitRate?: number;
  /** Largest difference of a member's tick period from one tick, in time units. */
  readonly tickSkewUnitsMax: number;
  /**
   * Probability that a member crashes while handling a Ready that persists
   * entries or hard state, at a random point of it. These crashes hit right
   * around votes and appends, where a crash between two ticks rarely lands.
   * Default 0.
   */
  readonly readyCrashRate?: number;
  /**
   * Probability that a new leader crashes in its first Ready, after storing
   * its no-op and before sending it. That step leaves an entry of a newer
   * term on one member only, as in Figure 8 of the Raft paper (Ongaro and
   * Ousterhout, 2014).
   * Default 0.
   */
  readonly newLeaderCrashRate?: number;
  /**
   * Probability that a leader crashes right after it stored a higher commit
   * index and before it sent it, so that only its own disk has the decision.
   * Default 0.
   */
  readonly leaderCommitCrashRate?: number;
  /**
   * Restarts a member that lost its disk without withholding its votes, as
   * replog without --rejoin does, for tests that show what the hold prevents.
   */
  readonly rejoinWithoutHold?: boolean;
  readonly traceLinesKept?: number;
  readonly echoTrace?: (line: string) => void;
}

/** Largest delay of a deferred Ready, in time units (well under one tick). */
const READY_DEFER_UNITS_MAX = 4;
/** Largest duration of the fsync of a split Ready, in time units (up to two ticks). */
const SYNC_UNITS_MAX = 2 * TIME_UNITS_PER_TICK;
/** Probability that a crash keeps a write not yet fsync'd; otherwise it is lost. */
const KEEP_UNSYNCED_RATE = 0.5;
/** Ready batches handled back to back before the core is deemed stuck in a loop. */
const READY_ROUNDS_MAX = 1000;

/**
 * Several members of the real core in one process, driven by one seeded
 * generator: tick order and skew, message delivery, faults and Ready batching
 * all come from it. The invariant checker runs after every event.
 */
export class Cluster implements DriverContext {
  readonly members: readonly Member[];
  readonly network: Network;
  readonly trace: Trace;
  readonly checker: InvariantChecker;
  readonly ledger = new ProposalLedger();
  /** Decisions of the test or chaos schedule that drives this cluster. */
  readonly rng: Rng;
  /** Simulated time in time units; TIME_UNITS_PER_TICK make one tick. */
  now = 0;
  /** Probability of a crash while handling a Ready; starts at options.readyCrashRate. */
  readyCrashRate: number;
  /** Starts at options.newLeaderCrashRate. */
  newLeaderCrashRate: number;
  /** Starts at options.leaderCommitCrashRate. */
  leaderCommitCrashRate: number;
  messagesSent = 0;
  /** Called with every message a member sends, before the network routes it. */
  sendObserver: ((message: Message) => void) | null = null;
  /** Messages delivered so far, by message type, and rejected appends as `appendReject`. */
  readonly deliveredCounts = new Map<string, number>();
  private readonly queue: EventQueue;
  private readonly networkRng: Rng;
  private readonly schedulingRng: Rng;
  private readonly softStates = new Map<NodeId, string>();
  /** Each member's role in the last Ready it handled. */
  private readonly readyRoles = new Map<NodeId, Role>();

  constructor(readonly options: ClusterOptions) {
    const root = new Rng(options.seed);
    this.rng = root.fork();
    this.networkRng = root.fork();
    this.schedulingRng = root.fork();
    this.queue = new EventQueue(() => this.schedulingRng.nextUint32());
    const ids = Array.from({ length: options.memberCount }, (_, index) => `n${index + 1}`);
    this.members = ids.map((id) => new Member(id, this.drawTickPeriod()));
    this.network = new Network(ids, options.faults);
    this.trace = new Trace(options.traceLinesKept, options.echoTrace ?? null);
    this.checker = new InvariantChecker(this.members);
    this.readyCrashRate = options.readyCrashRate ?? 0;
    this.newLeaderCrashRate = options.newLeaderCrashRate ?? 0;
    this.leaderCommitCrashRate = options.leaderCommitCrashRate ?? 0;
  }

  /** Starts every member, as a new cluster does. */
  start(): void {
    this.log(`start members=${this.members.length} seed=${this.options.seed} ${JSON.stringify(this.options.core)}`);
    for (const member of this.members) this.boot(member);
  }

  member(id: NodeId): Member {
    const found = this.members.find((member) => member.id === id);
    if (found === undefined) throw new Error(`unknown member ${id}`);
    return found;
  }

  /** Returns the member that is up and leader in the highest term, if any. */
  leader(): Member | undefined {
    let best: Member | undefined;
    let bestTerm = -1;
    for (const member of this.members) {
      const status = member.core?.status();
      if (status?.role === 'leader' && status.term > bestTerm) {
        best = member;
        bestTerm = status.term;
      }
    }
    return best;
  }

  /** Returns the election timeout of the cores, in ticks. Each core draws its own from it up to twice that. */
  get electionTimeoutTicks(): number {
    return this.options.core.electionTimeoutTicks;
  }

  upMembers(): Member[] {
    return this.members.filter((member) => member.isUp);
  }

  /** Runs every event up to `ticks` ticks from now. */
  runTicks(ticks: number): void {
    const end = this.now + ticks * TIME_UNITS_PER_TICK;
    for (;;) {
      const time = this.queue.peekTime();
      if (time === undefined || time > end) break;
      this.runNextEvent();
    }
    this.now = end;
  }

  /**
   * Runs event by event until `done` returns true, so a test can act between
   * two events; returns false after `maxTicks`.
   */
  runEventsUntil(done: () => boolean, maxTicks: number): boolean {
    const end = this.now + maxTicks * TIME_UNITS_PER_TICK;
    while (!done()) {
      const time = this.queue.peekTime();
      if (time === undefined || time > end) {
        this.now = end;
        return false;
      }
      this.runNextEvent();
    }
    return true;
  }

  /** Runs tick by tick until `done` returns true; returns false after `maxTicks`. */
  runUntil(done: () => boolean, maxTicks: number): boolean {
    for (let tick = 0; tick < maxTicks; tick += 1) {
      if (done()) return true;
      this.runTicks(1);
    }
    return done();
  }

  /**
   * Crashes a member at `point` of handling its pending Ready, or between two
   * events when it has none. A member whose Ready waits for its fsync crashes
   * in that window instead, and its unsynced write is kept or dropped. Its
   * store and state machine survive.
   */
  crash(id: NodeId, point: CrashPoint = 'beforePersist'): void {
    const member = this.member(id);
    if (!member.isUp) return;
    crashMember(this, member, point);
  }

  /**
   * Crashes a member if it is up and empties its disk, as when replog's data
   * folder is lost. It restarts, when restart() is called, with its votes
   * withheld (replog's --rejoin) unless `rejoinWithoutHold` is set.
   */
  wipe(id: NodeId): void {
    const member = this.member(id);
    if (member.isUp) crashMember(this, member, 'beforePersist');
    member.wipe();
    this.checker.forgetDurable(member);
    this.log(`${id} lost its disk`);
  }

  /** Starts a crashed member again from its store and state machine. */
  restart(id: NodeId): void {
    const member = this.member(id);
    if (member.isUp) return;
    this.boot(member);
  }

  /** Proposes values at one member; returns null when it is down. */
  propose(id: NodeId, values: readonly string[]): ProposeResult | null {
    const member = this.member(id);
    const core = member.core;
    if (core === null) return null;
    const result = core.propose(values.map(encodeValue));
    if (result.ok) {
      this.ledger.recordAccepted(id, values, result.firstIndex, result.term);
      this.log(`${id} accepted proposal ${values.join(',')} at ${result.firstIndex}/${result.term}`);
    } else {
      this.log(`${id} rejected proposal ${values.join(',')} leader=${String(result.leaderId)}`);
    }
    this.afterInput(member);
    return result;
  }

  /** Has the leader `id` hand its role to `to`. Returns false when it is down or cannot. */
  transferLeadership(id: NodeId, to: NodeId): boolean {
    const member = this.member(id);
    const core = member.core;
    if (core === null) return false;
    const started = core.transferLeadership(to);
    this.log(`${id} ${started ? 'hands over leadership to' : 'cannot hand over leadership to'} ${to}`);
    this.afterInput(member);
    return started;
  }

  /** Compacts a member's log up to `index`, which it must have applied. */
  compact(id: NodeId, index: number, keepEntries: number): void {
    const member = this.member(id);
    const core = member.core;
    if (core === null) return;
    const { snapshot, logStart } = core.compact(index, keepEntries);
    // SqliteRaftLog.compact() fsyncs the WAL, which makes an unsynced write durable too.
    syncWrite(this, member, 'synced by compaction');
    member.store.compact(snapshot, logStart);
    this.log(`${id} compacted snapshot=${snapshot.index}/${snapshot.term} logStart=${logStart.index}`);
    this.afterInput(member);
  }

  log(text: string): void {
    this.trace.add(`t=${(this.now / TIME_UNITS_PER_TICK).toFixed(1)}`, text);
  }

  send(from: Member, message: Message): void {
    this.messagesSent += 1;
    this.checker.checkSent(from, message);
    this.sendObserver?.(message);
    const envelope: Envelope = { message, snapshotData: this.snapshotDataFor(from, message) };
    const delays = this.network.route(this.networkRng);
    if (delays.length === 0) this.log(`lost ${describeMessage(message)}`);
    for (const delay of delays) this.queue.schedule(this.now + delay, () => this.deliver(envelope));
  }

  drawCrashPoint(member: Member, ready: Ready): CrashPoint | null {
    const leading = ready.softState.role === 'leader';
    const newLeader = leading && this.readyRoles.get(member.id) !== 'leader';
    if (newLeader && this.drawFault(this.newLeaderCrashRate)) return 'afterPersistUnsent';
    const commit = ready.hardState?.commit ?? 0;
    const leaderCommit = leading && commit > member.store.currentHardState().commit;
    if (leaderCommit && this.drawFault(this.leaderCommitCrashRate)) return 'afterPersistUnsent';
    if (ready.entries.length === 0 && ready.hardState === null) return null;
    return this.drawFault(this.readyCrashRate) ? this.schedulingRng.pick(CRASH_POINTS) : null;
  }

  drawSplit(): boolean {
    return this.drawFault(this.options.readySplitRate ?? 0);
  }

  drawKeepUnsynced(): boolean {
    return this.schedulingRng.chance(KEEP_UNSYNCED_RATE);
  }

  scheduleSync(member: Member): void {
    const incarnation = member.incarnation;
    this.queue.schedule(this.now + this.schedulingRng.int(1, SYNC_UNITS_MAX), () => {
      if (member.incarnation !== incarnation || member.core === null) return;
      finishInflightReady(this, member);
      this.checker.checkStep();
      this.handleReadyNow(member);
    });
  }

  /** Returns true with the given probability; draws nothing when it is 0. */
  private drawFault(probability: number): boolean {
    return probability > 0 && this.schedulingRng.chance(probability);
  }

  noteSoftState(member: Member, softState: SoftState): void {
    this.readyRoles.set(member.id, softState.role);
    const text = `${softState.role} t${softState.term} leader=${String(softState.leaderId)}`;
    if (this.softStates.get(member.id) === text) return;
    this.softStates.set(member.id, text);
    this.log(`${member.id} is ${text}`);
  }

  private runNextEvent(): void {
    const event = this.queue.pop();
    if (event === undefined) return;
    this.now = event.time;
    event.run();
  }

  private boot(member: Member): void {
    const core = member.start(this.raftConfig(member));
    const status = core.status();
    this.log(`${member.id} started t${status.term} commit=${status.commitIndex} applied=${status.appliedIndex} last=${status.lastLogIndex}`);
    this.checker.checkRestart(member);
    this.scheduleTick(member, member.incarnation);
    this.afterInput(member);
  }

  private raftConfig(member: Member): RaftConfig {
    const random = this.rng.fork();
    const { entryCacheMax, entryCacheBytesMax, ...core } = this.options.core;
    const config: RaftConfig = {
      ...core,
      id: member.id,
      peers: this.members.map((m) => m.id),
      random: () => random.next(),
      ...(member.rejoining && this.options.rejoinWithoutHold !== true ? { holdVotes: true } : {}),
    };
    if (entryCacheMax === undefined) return config;
    const entryReader = { read: (fromIndex: number, toIndex: number, bytesMax: number) => member.store.readEntries(fromIndex, toIndex, bytesMax) };
    return entryCacheBytesMax === undefined ? { ...config, entryReader, entryCacheMax } : { ...config, entryReader, entryCacheMax, entryCacheBytesMax };
  }

  private drawTickPeriod(): number {
    const skew = this.options.tickSkewUnitsMax;
    return TIME_UNITS_PER_TICK + this.schedulingRng.int(-skew, skew);
  }

  private scheduleTick(member: Member, incarnation: number): void {
    const jitter = this.schedulingRng.int(0, 1);
    this.queue.schedule(this.now + member.tickPeriodUnits + jitter, () => {
      if (member.core === null || member.incarnation !== incarnation) return;
      member.core.tick();
      this.afterInput(member);
      this.scheduleTick(member, incarnation);
    });
  }

  private deliver(envelope: Envelope): void {
    const message = envelope.message;
    const member = this.member(message.to);
    if (member.core === null || !this.network.canDeliver(message.from, message.to)) {
      this.log(`dropped ${describeMessage(message)}`);
      return;
    }
    this.log(`recv ${describeMessage(message)}`);
    this.countDelivery(message.type);
    if (message.type === 'appendResponse' && !message.success) this.countDelivery('appendReject');
    if (message.type === 'snapshot' && envelope.snapshotData !== null) {
      member.stageSnapshot(message.snapshot, envelope.snapshotData);
    }
    member.core.step(message);
    this.afterInput(member);
  }

  private countDelivery(key: string): void {
    this.deliveredCounts.set(key, (this.deliveredCounts.get(key) ?? 0) + 1);
  }

  /**
   * Checks invariants, then handles the member's Ready now or a little later.
   * A member whose Ready waits for its fsync takes no Ready here, because the
   * finish of that Ready handles the next one.
   */
  private afterInput(member: Member): void {
    this.checker.checkStep();
    const core = member.core;
    if (member.inflight !== null) applyDuringSync(this, member);
    if (core === null || member.readyScheduled || member.inflight !== null || !core.hasReady()) return;
    if (!this.schedulingRng.chance(this.options.readyDeferRate)) {
      this.handleReadyNow(member);
      return;
    }
    member.readyScheduled = true;
    const incarnation = member.incarnation;
    this.queue.schedule(this.now + this.schedulingRng.int(1, READY_DEFER_UNITS_MAX), () => {
      if (member.incarnation !== incarnation || member.core === null) return;
      member.readyScheduled = false;
      if (member.inflight === null) this.handleReadyNow(member);
    });
  }

  private handleReadyNow(member: Member): void {
    for (let round = 0; member.core?.hasReady() === true; round += 1) {
      if (round === READY_ROUNDS_MAX) {
        throw new InvariantViolation(
          'progress',
          `${member.id} still has a Ready after ${READY_ROUNDS_MAX} in a row`,
        );
      }
      const outcome = handleReady(this, member, null);
      this.checker.checkStep();
      if (outcome !== 'done') return;
    }
  }

  private snapshotDataFor(from: Member, message: Message): Envelope['snapshotData'] {
    if (message.type !== 'snapshot') return null;
    const index = message.snapshot.index;
    if (from.applied.length < index) {
      throw new InvariantViolation(
        'snapshot',
        `${from.id} sent snapshot ${index} but applied only ${from.applied.length}`,
      );
    }
    return from.applied.slice(0, index);
  }
}
