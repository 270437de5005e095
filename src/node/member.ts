import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { Raft } from '../consensus/raft';
import { EntryType } from '../consensus/types';
import type { CoreStatus, Entry, HardState, Message, Ready, RestoredState, Role, SnapshotMeta, SoftState } from '../consensus/types';
import { errors, ForwardAbandonedError, ReplogError, toReplogError } from '../grpc/errors';
import { encodeMessageBatch, oversizeValuesetBytes, valuesetBytesMax } from '../storage/codec';
import { MessageStore } from '../storage/message-store';
import { makeDirectoriesSync, removeFileIfExists } from '../storage/durable-fs';
import { SqliteRaftLog } from '../storage/raft-log';
import { fileSha256Sync, latestSnapshot, listSnapshots, pruneSnapshotsBelow, snapshotsDirectory, type LocalSnapshot } from '../storage/snapshot-files';
import { readCurrent, stateDirectory } from '../storage/state-dir';
import type { StoredMessage } from '../storage/types';
import type { MemberConfig } from './config';
import { rejoinMarkerFileName } from './membership-file';
import { MemberMetrics } from './metrics';
import { seededRandom } from './random';
import { CatchUpReporter } from './catch-up-reporter';
import { AppliedIndexWaiters, ProposalWaiters, type AppendResult } from './waiters';

/** The I/O a member needs from its peer transport. */
export interface MemberTransport {
  send(messages: readonly Message[]): void;
  sendSnapshot(to: string, term: number): void;
  forward(leaderId: string, valueset: string): Promise<AppendResult>;
  /** Fails the appends forwarded to `leaderId` that wait for a reply, with ForwardAbandonedError. */
  abandonForwards(leaderId: string): void;
}

/**
 * Upper bounds of one AppendEntries message; see RaftConfig. With 64 bytes of
 * encoding per entry, an append stays below 512 KiB, half of grpcMessageBytesMax.
 */
const appendEntriesMax = 4096;
const appendBytesMax = 256 * 1024;
/** Pipelined AppendEntries per follower; more only add queueing delay. */
const inflightAppendsMax = 16;
/**
 * Entry data in flight per follower: half the Raft stream's queue cap in
 * peer-link.ts, so a full window leaves room there for probes and heartbeats.
 */
const inflightBytesMax = 16 * 1024 * 1024;
/**
 * Applied entries whose data the core keeps in memory. Older entries, up to
 * a snapshot's worth, are read back from raft.db for a follower that needs them.
 * NOTE: those reads run on the event loop, up to appendBytesMax per append.
 */
const entryCacheMax = 8192;
/** How long an append waits for a leader to be elected before UNAVAILABLE. */
const leaderWaitMs = 3000;
/**
 * Forwards of one append, when each is abandoned before a reply because its
 * leader stopped leading or the connection to it hung. Each attempt after
 * the first waits up to leaderWaitMs for a leader.
 */
const forwardAttemptsMax = 3;

/** Time between two warnings about misaddressed peer messages from one sender to one addressee. */
const misaddressedWarnIntervalMs = 10_000;

/**
 * Entries a follower may be behind the leader before it rejects new appends.
 * It replies to an append only once it has applied the entry itself, so a
 * follower catching up after a restart would keep its clients waiting for
 * seconds. In steady operation the lag is a few rounds of appends, well below.
 */
const appendLagMax = 20_000;
const expireSweepMs = 200;
/**
 * Entry data that the leader's log may keep below a snapshot for followers
 * that catch up from it (see catchUpFloor()): four intervals of the default
 * --snapshot-threshold-bytes.
 */
const catchUpBytesMax = 256 * 1024 * 1024;
/** Maximum number of compaction points that catchUpFloor() keeps, which bounds their memory when snapshots are tiny. */
const catchUpPointsMax = 1024;
/**
 * Gaps between proposals count as at most this many --batch-delay-ms in their
 * moving average. After a pause that long the average is at least one delay,
 * so the next append goes out at once.
 */
const proposalGapCapDelays = 10;
/** Weight of the newest gap in the moving average of gaps between proposals. */
const proposalGapWeight = 0.1;
/** Queued proposals that go out without waiting for more, whatever --batch-delay-ms is. */
const batchQueueMax = 256;

/** A log write of one Ready whose fsync is pending. */
interface PendingWrite {
  readonly hardState: HardState;
  /** Stops the persist timer. */
  readonly end: () => void;
}

interface QueuedProposal {
  readonly valueset: string;
  readonly receivedAtMs: number;
  /** Time the append was queued, by performance.now(). --append-timeout-ms and the append latency count from it. */
  readonly queuedAtMs: number;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: ReplogError) => void;
}

/**
 * The driver of one member: it owns the Raft core, the Raft log and the message
 * store, and performs each Ready in order: install snapshot, persist and fsync,
 * send, apply, advance. Everything runs on the event loop; SQLite calls are
 * synchronous, so one Ready is never interleaved with another.
 */
export class Member extends EventEmitter {
  readonly metrics = new MemberMetrics();
  private readonly raft: Raft;
  private readonly raftLog: SqliteRaftLog;
  private store: MessageStore;
  private transport: MemberTransport | null = null;
  private readonly proposals = new ProposalWaiters();
  private readonly appliedWaiters = new AppliedIndexWaiters();
  private readonly inflightByValueset = new Map<string, Promise<AppendResult>>();
  /** UTF-8 bytes of the valuesets in inflightByValueset. */
  private pendingBytes = 0;
  private proposalQueue: QueuedProposal[] = [];
  private softState: SoftState;
  /** Hard state as last written to the Raft log, and the newest one from the core. */
  private persistedHardState: HardState;
  private latestHardState: HardState;
  private appliedIndex: number;
  private snapshotIndex: number;
  /** True while a snapshot is taken: the state database fsync'd, then the log compacted. */
  private compacting = false;
  /** Set when a peer needs a newer snapshot file, which the next drive saves. */
  private snapshotFileRequested = false;
  private savingSnapshotFile = false;
  /** Count of the leader's snapshots installed, so that a snapshot started before one is dropped. */
  private stateGeneration = 0;
  /**
   * Indexes of the snapshot files being saved or sent, by holder. The log is
   * not compacted past them, so that a file stays usable until it is sent.
   */
  private readonly compactionHolds = new Map<symbol, number>();
  /** The durable applied index that the latest snapshot tried to compact to. */
  private snapshotAttemptIndex = 0;
  /** Entry data applied since start, in bytes. */
  private appliedBytes = 0;
  /** Index and appliedBytes of recent compactions, oldest first, within catchUpBytesMax of the newest. */
  private readonly compactionPoints: { readonly index: number; readonly appliedBytes: number }[] = [];
  /** Index of the snapshot file each follower accepted last, until it reports the snapshot installed. */
  private readonly snapshotsSentTo = new Map<string, number>();
  private bytesSinceSnapshot = 0;
  /** The file that makes this member withhold its votes after losing its data, see rejoinMarkerFileName. */
  private readonly rejoinMarkerPath: string;
  /** Whether the core withheld its votes at the last check. The marker file exists while it does. */
  private holdingVotes: boolean;
  /** Ids in --peers, this member's included. */
  private readonly peerIds: ReadonlySet<string>;
  /** When warnMisaddressed() last logged, by sender and addressee. */
  private readonly misaddressedWarnedAtMs = new Map<string, number>();
  /** The highest index a leader reported as committed or stored: in appends, snapshots and forward replies. */
  private leaderIndexSeen = 0;
  /**
   * Verified snapshot files from the leader by `index/term`, until the core
   * installs one. Several can arrive while a Ready waits for its fsync.
   */
  private readonly stagedSnapshots = new Map<string, string>();
  private driveScheduled = false;
  /** Arrival time of the latest proposal, by performance.now(). */
  private lastProposalMs = -Infinity;
  /** Moving average of the time between two proposals, in ms. It starts at its cap, so the first appends go out at once. */
  private proposalGapMs: number;
  /** Timer that flushes the queued proposals once the oldest has waited --batch-delay-ms. */
  private batchTimer: NodeJS.Timeout | null = null;
  /** A Ready waits for the fsync of its log write; no other Ready starts meanwhile. */
  private syncing = false;
  /** Messages of the Ready in progress that went out before its write. */
  private sentEarly: Message[] = [];
  /** How many of the pending Ready's committed entries startReady() applied. */
  private appliedEarly = 0;
  /** The durable applied index of a snapshot whose compaction waits for the core's advance(). */
  private pendingCompaction: { index: number; end: () => number } | null = null;
  /** The error that appends still in progress fail with once the member stopped. */
  private stopFailure: ReplogError = errors.shuttingDown();
  private stopped = false;
  /** Followers that this leader logged as not responding and has not heard from since. */
  private readonly silentPeers = new Set<string>();
  private tickTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly catchUp: CatchUpReporter;

  constructor(
    readonly config: MemberConfig,
    readonly log: Logger,
  ) {
    super();
    this.setMaxListeners(0);
    this.proposalGapMs = proposalGapCapDelays * config.batchDelayMs;
    this.peerIds = new Set(config.peers.map((peer) => peer.id));
    this.rejoinMarkerPath = path.join(config.dataDir, rejoinMarkerFileName);
    this.holdingVotes = fs.existsSync(this.rejoinMarkerPath);
    makeDirectoriesSync(config.dataDir);
    this.raftLog = SqliteRaftLog.open(config.dataDir, log);
    this.store = MessageStore.open(config.dataDir, log);
    const restored = this.restore();
    this.appliedIndex = restored.appliedIndex;
    this.snapshotIndex = restored.snapshot.index;
    this.raft = new Raft(
      {
        id: config.id,
        peers: config.peers.map((p) => p.id),
        electionTimeoutTicks: electionTimeoutTicks(config),
        heartbeatIntervalTicks: heartbeatTicks(config),
        preVote: true,
        checkQuorum: true,
        appendEntriesMax,
        appendBytesMax,
        inflightAppendsMax,
        inflightBytesMax,
        random: seededRandom(),
        logger: log,
        entryReader: { read: (fromIndex, toIndex, bytesMax) => this.raftLog.readEntries(fromIndex, toIndex, bytesMax) },
        entryCacheMax,
        holdVotes: this.holdingVotes,
      },
      restored,
    );
    if (this.holdingVotes) {
      log.warn(
        { file: this.rejoinMarkerPath },
        'withholding votes until a leader has caught this member up, because it lost its data (--rejoin). ' +
          'If most members lost their data, no leader can be elected until this file is deleted on them and they restart',
      );
    }
    this.softState = { role: 'follower', leaderId: null, term: restored.hardState.term };
    this.persistedHardState = restored.hardState;
    this.latestHardState = restored.hardState;
    this.catchUp = new CatchUpReporter(log, restored, this.store.summary().messageCount);
    this.updateGauges(this.raft.status());
  }

  /** Loads the Raft log and state; logs what will be replayed. */
  private restore(): RestoredState {
    let loaded = this.raftLog.load();
    this.restoreStateFromSnapshot(loaded.logStart.index, Math.max(loaded.logStart.index, loaded.snapshot.index));
    const summary = this.store.summary();
    let lastIndex = loaded.logStart.index + loaded.entries.length;
    if (summary.appliedIndex > lastIndex) {
      // A crash between swapping in a received snapshot and recording it in
      // the Raft log: the state database is already the snapshot, so finish.
      const snapshot = { index: summary.appliedIndex, term: summary.appliedTerm };
      this.log.info({ snapshotIndex: snapshot.index, lastLogIndex: lastIndex }, 'state database is ahead of the log after a snapshot install or fetch, so the log now starts at its applied index');
      this.raftLog.installSnapshot(snapshot);
      loaded = this.raftLog.load();
      lastIndex = snapshot.index;
    } else if (summary.appliedIndex > loaded.logStart.index) {
      // Raft's rule for an installed snapshot: the log after it stays only when
      // the log has the snapshot's last entry. A member that lost its state and
      // fetched a peer's snapshot can have other, uncommitted entries there.
      const logTerm = loaded.entries[summary.appliedIndex - loaded.logStart.index - 1]!.term;
      if (logTerm !== summary.appliedTerm) {
        const snapshot = { index: summary.appliedIndex, term: summary.appliedTerm };
        this.log.warn(
          { snapshotIndex: snapshot.index, snapshotTerm: snapshot.term, logTerm, lastLogIndex: lastIndex },
          'the state database comes from a snapshot whose last entry is not in the log; discarding the log',
        );
        this.raftLog.installSnapshot(snapshot);
        loaded = this.raftLog.load();
        lastIndex = snapshot.index;
      }
    }
    if (summary.appliedIndex >= loaded.logStart.index && summary.appliedIndex < loaded.snapshot.index) {
      // The state database was lost or damaged, and was recreated empty or
      // from an older local snapshot. The log still contains every entry
      // after it, because compaction keeps entries below the snapshot, so the
      // member replays them. The core rejects a recorded snapshot ahead of
      // the state, so it moves down to the log start, which the state covers.
      this.log.warn(
        { appliedIndex: summary.appliedIndex, snapshotIndex: loaded.snapshot.index, logStartIndex: loaded.logStart.index },
        'state database is behind the recorded snapshot but not the log start; replaying the log from its applied index',
      );
      this.raftLog.compact(loaded.logStart, loaded.logStart);
      loaded = this.raftLog.load();
    }
    this.log.info(
      {
        term: loaded.hardState.term,
        commitIndex: loaded.hardState.commit,
        appliedIndex: summary.appliedIndex,
        lastLogIndex: lastIndex,
        snapshotIndex: loaded.snapshot.index,
        messageCount: summary.messageCount,
      },
      'restored state from disk',
    );
    if (summary.appliedIndex < loaded.logStart.index) {
      // runMember fetches a peer's snapshot before it gets here, so this is
      // reached only when a Member is built directly on such a folder: stop
      // rather than apply a log with a hole in it.
      throw new Error(
        `state database in ${this.config.dataDir} is at index ${summary.appliedIndex}, below the log start ${loaded.logStart.index}, ` +
          `and no local snapshot covers the gap; start it with \`replog node\`, which fetches a snapshot from a peer, ` +
          `or put a peer's snapshot-<index>-<term>.db and its .sha256 file into ${this.snapshotsDir()}`,
      );
    }
    let hardState = loaded.hardState;
    if (hardState.commit > lastIndex) {
      this.log.warn({ commitIndex: hardState.commit, lastLogIndex: lastIndex }, 'commit index is past the stored log; lowering it');
      hardState = { ...hardState, commit: Math.max(lastIndex, summary.appliedIndex) };
    }
    return { ...loaded, hardState, appliedIndex: summary.appliedIndex };
  }

  /**
   * Restores the state database from the newest local snapshot when the
   * database is behind the log start (it was lost and recreated empty, or a
   * failed start left an empty one and a snapshot was copied in since). The
   * Raft log and hard state stay as they are, so the member's votes and
   * acknowledgements still hold; the log then replays after the snapshot.
   */
  private restoreStateFromSnapshot(logStartIndex: number, requiredIndex: number): void {
    if (this.store.summary().appliedIndex >= logStartIndex) return;
    const newest = listSnapshots(this.snapshotsDir())[0];
    if (!newest || newest.meta.index < requiredIndex) return;
    if (fileSha256Sync(newest.path) !== newest.sha256) {
      this.log.warn({ snapshot: newest.path }, 'snapshot does not match its SHA-256 sidecar; not restoring from it');
      return;
    }
    this.store.restoreFrom(newest.path);
    this.log.warn(
      { snapshot: newest.path, snapshotIndex: newest.meta.index, logStartIndex },
      'state database was behind the log start; restored it from a local snapshot',
    );
  }

  start(transport: MemberTransport): void {
    this.transport = transport;
    this.tickTimer = setInterval(() => {
      this.raft.tick();
      this.drive();
    }, this.config.tickMs);
    this.sweepTimer = setInterval(() => {
      this.expireProposals();
      this.reportPeerContact();
    }, expireSweepMs);
    this.scheduleDrive();
  }

  get id(): string {
    return this.config.id;
  }

  get role(): Role {
    return this.softState.role;
  }

  get leaderId(): string | null {
    return this.softState.leaderId;
  }

  get pendingAppends(): number {
    return this.inflightByValueset.size;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  /** Steps messages received from peers and schedules one Ready for all of them. */
  receive(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const message of messages) {
      if (message.to !== this.config.id || !this.peerIds.has(message.from)) {
        this.warnMisaddressed(message);
        continue;
      }
      this.metrics.peerMessageReceived(message.type);
      this.catchUp.observe(message);
      if (message.type === 'append') this.leaderIndexSeen = Math.max(this.leaderIndexSeen, message.commit);
      if (message.type === 'heartbeat') this.leaderIndexSeen = Math.max(this.leaderIndexSeen, message.leaderCommit ?? message.commit);
      this.raft.step(message);
    }
    this.scheduleDrive();
  }

  /**
   * Logs a message meant for another member, or sent by a member missing from
   * --peers, once per sender and addressee every misaddressedWarnIntervalMs,
   * because a member whose --peers maps ids to the wrong addresses sends such
   * messages many times a second.
   */
  private warnMisaddressed(message: Message): void {
    const now = performance.now();
    const key = `${message.from}>${message.to}`;
    if (now - (this.misaddressedWarnedAtMs.get(key) ?? -Infinity) < misaddressedWarnIntervalMs) return;
    this.misaddressedWarnedAtMs.set(key, now);
    const fields = { from: message.from, to: message.to, id: this.config.id, type: message.type };
    if (message.to !== this.config.id) {
      this.log.warn(fields, `dropped a peer message for ${message.to}, but this member is ${this.config.id}; check the --peers addresses of ${message.from}`);
    } else {
      this.log.warn(fields, `dropped a peer message from ${message.from}, which is not in --peers; check --peers of ${message.from} and of this member`);
    }
  }

  /** Steps a verified snapshot file from the leader into the core, which decides whether to install it. */
  receiveSnapshot(from: string, term: number, meta: SnapshotMeta, filePath: string): void {
    if (this.stopped) return;
    this.stagedSnapshots.set(snapshotKey(meta), filePath);
    this.leaderIndexSeen = Math.max(this.leaderIndexSeen, meta.index);
    this.raft.step({ type: 'snapshot', from, to: this.config.id, term, snapshot: meta });
    this.drive();
  }

  /**
   * Appends one valueset and resolves once it is committed and applied here.
   * `forwarded` marks appends a follower sent us, which are never forwarded again.
   */
  append(valueset: string, forwarded = false): Promise<AppendResult> {
    const invalid = validateValueset(valueset);
    if (invalid) return Promise.reject(invalid);
    if (this.stopped) return Promise.reject(errors.shuttingDown());
    const storedIndex = this.store.lookup(valueset);
    if (storedIndex !== undefined) {
      this.metrics.duplicates.inc();
      return Promise.resolve({ index: storedIndex, duplicate: true });
    }
    const inflight = this.inflightByValueset.get(valueset);
    if (inflight) {
      return inflight.then((r) => ({ index: r.index, duplicate: true }));
    }
    if (this.inflightByValueset.size >= this.config.pendingAppendsMax) {
      this.metrics.proposalsFailed.inc({ code: 'RESOURCE_EXHAUSTED' });
      return Promise.reject(errors.overloaded(this.inflightByValueset.size, this.config.pendingAppendsMax));
    }
    // Large valuesets reach the byte bound long before the count bound: 50,000 of 64 KiB would be 3.2 GB.
    const bytes = Buffer.byteLength(valueset, 'utf8');
    if (this.pendingBytes + bytes > this.config.pendingBytesMax) {
      this.metrics.proposalsFailed.inc({ code: 'RESOURCE_EXHAUSTED' });
      return Promise.reject(errors.overloadedBytes(this.pendingBytes, bytes, this.config.pendingBytesMax));
    }
    const promise = this.route(valueset, forwarded);
    this.inflightByValueset.set(valueset, promise);
    this.pendingBytes += bytes;
    const forget = (): void => {
      this.inflightByValueset.delete(valueset);
      this.pendingBytes -= bytes;
    };
    promise.then(forget, (err: unknown) => {
      forget();
      this.metrics.proposalsFailed.inc({ code: codeName(toReplogError(err).code) });
    });
    return promise;
  }

  private async route(valueset: string, forwarded: boolean, attempt = 1): Promise<AppendResult> {
    if (this.softState.role === 'leader') return this.enqueueProposal(valueset);
    if (forwarded) throw errors.forwardedToFollower(this.config.id, this.softState.leaderId);
    const leaderId = this.softState.leaderId ?? (await this.waitForLeader(leaderWaitMs));
    if (leaderId === this.config.id) return this.enqueueProposal(valueset);
    if (this.leaderIndexSeen - this.appliedIndex > appendLagMax) throw errors.catchingUp(this.appliedIndex, this.leaderIndexSeen);
    let result: AppendResult;
    try {
      result = await this.transport!.forward(leaderId, valueset);
    } catch (err) {
      // The leader changed, or the connection to it hung: send it to the leader known now.
      if (!(err instanceof ForwardAbandonedError) || attempt >= forwardAttemptsMax || this.stopped) throw err;
      return this.route(valueset, false, attempt + 1);
    }
    this.leaderIndexSeen = Math.max(this.leaderIndexSeen, result.index);
    // Waiting for this member to apply the entry could take as long as its catch-up.
    if (result.index - this.appliedIndex > appendLagMax) throw errors.committedCatchingUp(result.index, this.appliedIndex);
    // Nothing is applied here after a stop, so waiting would never end.
    if (this.stopped) throw this.stopFailure;
    await this.appliedWaiters.wait(result.index, this.appliedIndex);
    return result;
  }

  /**
   * Hands the leader role to the follower with the longest log, when this
   * member leads, and resolves once another member leads or after `timeoutMs`.
   * A member shutting down calls this, so that the others need not wait an
   * election timeout for a new leader. Appends meanwhile fail with
   * UNAVAILABLE, which clients retry. Any member that calls this stops
   * campaigning, so that it does not become leader on its way out.
   */
  async handOverLeadership(timeoutMs: number): Promise<void> {
    this.raft.leaveElections();
    if (this.stopped || this.softState.role !== 'leader') return;
    // Followers respond to every heartbeat, so one not heard from for two intervals may be stopped or cut off.
    const recentTicks = 2 * heartbeatTicks(this.config);
    const reachable = this.raft.status().peers.filter((p) => p.ticksSinceContact <= recentTicks);
    const target = reachable.sort((a, b) => b.matchIndex - a.matchIndex || a.ticksSinceContact - b.ticksSinceContact)[0];
    if (target === undefined || !this.raft.transferLeadership(target.id)) {
      this.log.info('no follower to hand leadership to');
      return;
    }
    this.scheduleDrive();
    const startedMs = performance.now();
    await new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.off('softState', onChange);
        this.off('stopped', finish);
        resolve();
      };
      // The vote request of the new term comes first, and the new leader's name with its first append.
      const onChange = (state: SoftState): void => {
        if (state.role !== 'leader' && state.leaderId !== null) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.on('softState', onChange);
      this.on('stopped', finish);
    });
    const ms = Math.round(performance.now() - startedMs);
    const { leaderId, term } = this.softState;
    if (leaderId === null || leaderId === this.config.id) this.log.warn({ to: target.id, leaderId, ms }, 'handing over leadership timed out');
    else this.log.info({ to: target.id, leaderId, term, ms }, 'handed over leadership');
  }

  /**
   * Resolves with the next leader the core reports. Rejects with noLeader
   * after `timeoutMs`, or with the stop failure (a disk error, say) as soon
   * as the member stops, because no leader is reported after that.
   */
  private waitForLeader(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.off('softState', onChange);
        this.off('stopped', onStopped);
      };
      const onChange = (state: SoftState): void => {
        if (state.leaderId === null) return;
        finish();
        resolve(state.leaderId);
      };
      const onStopped = (): void => {
        finish();
        reject(this.stopFailure);
      };
      const timer = setTimeout(() => {
        finish();
        reject(errors.noLeader());
      }, timeoutMs);
      this.on('softState', onChange);
      this.on('stopped', onStopped);
    });
  }

  private enqueueProposal(valueset: string): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      const now = performance.now();
      this.noteProposalArrival(now);
      this.proposalQueue.push({ valueset, receivedAtMs: Date.now(), queuedAtMs: now, resolve, reject });
      this.scheduleDrive();
    });
  }

  /**
   * Proposes every queued append as one batch, so they share one fsync. The
   * batch is encoded into one buffer, which the entries share in the log.
   */
  private flushProposals(): void {
    if (this.proposalQueue.length === 0 || this.waitForMoreProposals()) return;
    const batch = this.proposalQueue;
    this.proposalQueue = [];
    const result = this.raft.propose(encodeMessageBatch(batch));
    if (!result.ok) {
      // A core that still leads but refuses proposals is handing over its role.
      const error = this.raft.status().role === 'leader' ? errors.handingOver() : errors.leaderLost();
      for (const p of batch) p.reject(error);
      return;
    }
    this.metrics.proposalBatchAppends.observe(batch.length);
    batch.forEach((p, i) => {
      this.proposals.add(result.firstIndex + i, { term: result.term, startedMs: p.queuedAtMs, resolve: p.resolve, reject: p.reject });
    });
  }

  /** Adds the gap before a proposal arriving at `now` to the moving average of gaps. */
  private noteProposalArrival(now: number): void {
    const gapMs = Math.min(now - this.lastProposalMs, proposalGapCapDelays * this.config.batchDelayMs);
    this.proposalGapMs += (gapMs - this.proposalGapMs) * proposalGapWeight;
    this.lastProposalMs = now;
  }

  /**
   * Returns true, and sets a timer that drives again, when the queued
   * proposals should wait for more to share their Raft round. Each round
   * costs every member a log write, an fsync, a message each way and an
   * apply, so at 1,000 appends a second a wait of 2 ms cut the members' CPU
   * per append by a fifth (BENCHMARKS.md).
   */
  private waitForMoreProposals(): boolean {
    const delayMs = this.config.batchDelayMs;
    if (delayMs === 0 || this.proposalGapMs >= delayMs || this.proposalQueue.length >= batchQueueMax) return false;
    // A lone append with nothing in flight goes at once: a client that sends
    // one append at a time would otherwise wait on every append.
    if (this.proposalQueue.length === 1 && this.proposals.size === 0) return false;
    const waitedMs = performance.now() - this.proposalQueue[0]!.queuedAtMs;
    if (waitedMs >= delayMs) return false;
    this.batchTimer ??= setTimeout(() => {
      this.batchTimer = null;
      this.drive();
    }, delayMs - waitedMs);
    return true;
  }

  private scheduleDrive(): void {
    if (this.driveScheduled) return;
    this.driveScheduled = true;
    setImmediate(() => {
      this.driveScheduled = false;
      this.drive();
    });
  }

  /**
   * Performs the pending Readies of the core. A Ready that wrote to the Raft
   * log waits for its fsync on the thread pool, and no other Ready starts
   * meanwhile. The event loop goes on receiving appends and peer messages, so
   * the core takes them in and the next Ready carries them.
   */
  private drive(): void {
    if (this.stopped) return;
    if (this.syncing) {
      this.applyDuringSync();
      return;
    }
    this.flushProposals();
    try {
      while (this.raft.hasReady()) {
        const ready = this.raft.ready();
        const written = this.startReady(ready);
        if (written !== null) {
          this.awaitSync(ready, written);
          break;
        }
        this.finishReady(ready);
      }
    } catch (err) {
      this.failStop(err);
      return;
    }
    // Also while a write waits for its fsync: under steady load a pass
    // rarely ends without one, and snapshots must not wait for a pause.
    this.maybeSnapshot();
  }

  /**
   * Starts a Ready: installs its snapshot, sends the early messages, applies
   * the committed entries already on disk and writes the log. Returns the
   * write to wait for, if any.
   */
  private startReady(ready: Ready): PendingWrite | null {
    if (ready.snapshot) this.installSnapshot(ready.snapshot);
    const early = this.leaderMessagesBeforePersist(ready);
    this.sendMessages(early);
    this.sentEarly = early;
    this.appliedEarly = this.applyStored(ready);
    return this.write(ready);
  }

  /** Finishes a Ready once its writes are on disk: sends and applies the rest, then advances the core. */
  private finishReady(ready: Ready): void {
    const early = this.sentEarly;
    this.sentEarly = [];
    this.sendMessages(early.length === 0 ? ready.messages : ready.messages.filter((m) => !early.includes(m)));
    const rest = this.appliedEarly === 0 ? ready.committedEntries : ready.committedEntries.slice(this.appliedEarly);
    this.appliedEarly = 0;
    if (rest.length > 0) this.apply(rest);
    if (ready.softState.role !== this.softState.role || ready.softState.leaderId !== this.softState.leaderId) {
      this.onSoftState(ready.softState);
    }
    this.softState = ready.softState;
    this.raft.advance(ready);
    if (this.holdingVotes && !this.raft.votesHeld()) this.stopHoldingVotes();
    const pending = this.pendingCompaction;
    if (pending !== null && pending.index <= this.raft.status().appliedIndex) {
      this.pendingCompaction = null;
      this.compactTo(pending.index, pending.end);
    }
  }

  /**
   * Deletes the marker file once the core votes again. A crash before the
   * deletion is on disk only makes the member withhold its votes again until a
   * leader catches it up, so no fsync is needed.
   */
  private stopHoldingVotes(): void {
    this.holdingVotes = false;
    try {
      removeFileIfExists(this.rejoinMarkerPath);
    } catch (err) {
      this.log.warn({ file: this.rejoinMarkerPath, err: (err as Error).message }, 'failed to delete the rejoin marker, so delete it by hand');
    }
  }

  /**
   * Applies the Ready's committed entries that precede its new entries and
   * returns their count. Every earlier write was fsync'd before this Ready
   * started, so these entries are on disk here, and their appends get their
   * replies without waiting for this Ready's fsync. New entries that are
   * already committed (a follower's, when the leader's commit index runs
   * ahead) wait for it: a member never applies an entry its own log could
   * lose in a crash.
   */
  private applyStored(ready: Ready): number {
    const committed = ready.committedEntries;
    const firstNew = ready.entries[0]?.index ?? Infinity;
    let count = 0;
    while (count < committed.length && committed[count]!.index < firstNew) count++;
    if (count > 0) this.apply(count === committed.length ? committed : committed.slice(0, count));
    return count;
  }

  /**
   * Applies committed entries that earlier Readies stored, while a Ready
   * waits for its fsync, so their appends get replies without that wait.
   * The waiting Ready's own committed entries that are not applied yet are
   * among its new entries, and the core hands out none at or above those.
   */
  private applyDuringSync(): void {
    const entries = this.raft.takeStoredCommitted();
    const last = entries[entries.length - 1];
    if (last === undefined) return;
    try {
      this.apply(entries);
      this.raft.appliedTo(last.index);
    } catch (err) {
      this.failStop(err);
    }
  }

  private awaitSync(ready: Ready, written: PendingWrite): void {
    this.syncing = true;
    const file = this.raftLog.filePath;
    this.raftLog.sync().then(
      () => {
        this.syncing = false;
        if (this.stopped) return;
        written.end();
        this.persistedHardState = written.hardState;
        this.catchUp.persisted(ready.entries);
        try {
          this.finishReady(ready);
        } catch (err) {
          this.failStop(err);
          return;
        }
        this.drive();
      },
      (err: unknown) => {
        this.syncing = false;
        if (!this.stopped) this.failStop(new StorageWriteError(`${file}-wal`, err));
      },
    );
  }

  /**
   * Returns the leader's appends, heartbeats and snapshot notices, which may go
   * out before its own fsync, so followers write in parallel with the leader.
   * This is safe because the leader counts its own entries towards commit only
   * after advance(), and these messages depend on no unwritten term or vote.
   */
  private leaderMessagesBeforePersist(ready: Ready): Message[] {
    if (ready.softState.role !== 'leader' || ready.softState.term !== this.persistedHardState.term) return [];
    return ready.messages.filter((m) => m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot');
  }

  /**
   * Writes the Ready's entries and hard state; the caller waits for the
   * fsync. A change of the commit index alone is only remembered and written
   * with the next write: nothing sent depends on it, and after a crash the
   * leader sends the member its commit index again. This saves one fsync per
   * commit.
   */
  private write(ready: Ready): PendingWrite | null {
    if (ready.hardState) this.latestHardState = ready.hardState;
    const hardState = this.latestHardState;
    const written = this.persistedHardState;
    const voteOrTermChanged = hardState.term !== written.term || hardState.vote !== written.vote;
    if (ready.entries.length === 0 && !voteOrTermChanged) return null;
    const end = this.metrics.persistSeconds.startTimer();
    writingTo(() => this.raftLog.filePath, () => this.raftLog.write(ready.entries, hardState === written ? null : hardState));
    return { hardState, end };
  }

  private sendMessages(messages: readonly Message[]): void {
    if (messages.length === 0 || !this.transport) return;
    const regular: Message[] = [];
    for (const message of messages) {
      if (message.type === 'snapshot') this.transport.sendSnapshot(message.to, message.term);
      else regular.push(message);
    }
    this.transport.send(regular);
  }

  private onSoftState(next: SoftState): void {
    if (next.leaderId !== this.softState.leaderId && next.leaderId !== null) {
      this.metrics.leaderChanges.inc();
    }
    const previousLeader = this.softState.leaderId;
    if (previousLeader !== null && previousLeader !== this.config.id && next.leaderId !== previousLeader) {
      this.transport?.abandonForwards(previousLeader);
    }
    this.log.info({ role: next.role, term: next.term, leaderId: next.leaderId }, 'role or leader changed');
    if (next.role === 'leader') this.catchUp.becameLeader();
    this.softState = next;
    this.emit('softState', next);
  }

  private apply(entries: readonly Entry[]): void {
    const end = this.metrics.applySeconds.startTimer();
    const outcomes = writingTo(() => this.stateFile(), () => this.store.apply(entries));
    end();
    let next = 0;
    const now = performance.now();
    for (const entry of entries) {
      let outcome;
      if (entry.type === EntryType.Normal && outcomes[next]?.index === entry.index) outcome = outcomes[next++];
      const startedMs = this.proposals.settle(entry.index, entry.term, outcome);
      if (startedMs !== undefined) {
        this.metrics.proposalsCommitted.inc();
        this.metrics.appendSeconds.observe((now - startedMs) / 1000);
      }
    }
    let bytes = 0;
    for (const entry of entries) bytes += entry.data.length;
    this.bytesSinceSnapshot += bytes;
    this.appliedBytes += bytes;
    const last = entries[entries.length - 1]!;
    this.appliedIndex = Math.max(this.appliedIndex, last.index);
    this.catchUp.applied(this.appliedIndex, entries.length);
    this.appliedWaiters.notify(this.appliedIndex);
    this.emit('applied', this.appliedIndex);
  }

  private installSnapshot(meta: SnapshotMeta): void {
    const stagedPath = this.stagedSnapshots.get(snapshotKey(meta));
    if (stagedPath === undefined) {
      throw new Error(`core installed snapshot ${meta.index}/${meta.term} but none is staged for it`);
    }
    this.stagedSnapshots.clear();
    // The leader's snapshot replaces the state that a snapshot in progress made durable.
    this.stateGeneration += 1;
    if (this.pendingCompaction !== null) {
      this.pendingCompaction = null;
      this.compacting = false;
    }
    writingTo(() => this.stateFile(), () => this.store.restoreFrom(stagedPath));
    writingTo(() => this.raftLog.filePath, () => this.raftLog.installSnapshot(meta));
    this.proposals.rejectThrough(meta.index, errors.leaderLost());
    this.appliedIndex = meta.index;
    this.snapshotIndex = meta.index;
    this.metrics.snapshotsReceived.inc({ result: 'installed' });
    this.log.info({ snapshotIndex: meta.index, snapshotTerm: meta.term, ...this.store.summary() }, 'installed snapshot from leader');
    this.catchUp.installedSnapshot(meta.index, this.leaderIndexSeen);
    this.appliedWaiters.notify(this.appliedIndex);
    this.emit('applied', this.appliedIndex);
  }

  /**
   * Stops the member after handling a Ready failed, most often a write to its
   * Raft log or state database (disk full, I/O error). The core's state now
   * runs ahead of the disk, so going on could acknowledge or vote for state
   * that is not stored. Pending appends fail with UNAVAILABLE naming the disk
   * problem, and the 'fatal' event signals the process to exit with status 1.
   */
  private failStop(err: unknown): void {
    const file = err instanceof StorageWriteError ? err.file : null;
    const cause = err instanceof StorageWriteError ? err.cause : err;
    const message = cause instanceof Error ? cause.message : String(cause);
    if (file === null) this.log.fatal({ err: cause }, 'handling a Ready failed; stopping the member');
    else this.log.fatal({ err: cause, file }, 'writing to disk failed; stopping the member');
    const failure = file === null ? errors.shuttingDown() : errors.storageFailed(`${message} (${file})`);
    this.stopFailure = failure;
    for (const p of this.proposalQueue) p.reject(failure);
    this.proposalQueue = [];
    this.proposals.rejectAll(failure);
    this.appliedWaiters.rejectAll(failure);
    // stop() would write a pending commit index to the disk that just failed.
    // Skipping it is safe because the leader sends the commit index again.
    this.latestHardState = this.persistedHardState;
    try {
      this.stop();
    } catch (stopErr) {
      this.log.error({ err: stopErr }, 'closing the databases after the failure failed');
    }
    this.emit('fatal', cause, file);
  }

  /** Returns the path of the live state database, for error messages. */
  private stateFile(): string {
    const stateDir = stateDirectory(this.config.dataDir);
    return path.join(stateDir, readCurrent(stateDir) ?? 'CURRENT');
  }

  /**
   * Takes a snapshot once enough entries were applied since the last one, and
   * saves a snapshot file when a peer requested one.
   *
   * A snapshot copies nothing, because the state database writes the applied
   * index in the same transaction as its rows. Its fsync makes everything
   * applied so far durable, and the log is then compacted up to that index.
   * A full copy of the database, the file a follower installs, is saved only
   * when a follower needs one (snapshotToSend()).
   */
  private maybeSnapshot(): void {
    if (this.snapshotFileRequested && !this.savingSnapshotFile) this.saveSnapshotFile();
    if (this.compacting) return;
    const enoughEntries = this.appliedIndex - Math.max(this.snapshotIndex, this.snapshotAttemptIndex) >= this.config.snapshotThreshold;
    const enoughBytes = this.bytesSinceSnapshot >= this.config.snapshotThresholdBytes;
    if (!enoughEntries && !enoughBytes) return;
    this.compacting = true;
    this.bytesSinceSnapshot = 0;
    const end = this.metrics.snapshotSeconds.startTimer();
    const generation = this.stateGeneration;
    const file = this.stateFile();
    this.store.syncToDisk().then(
      (durable) => {
        if (this.stopped) return;
        if (generation !== this.stateGeneration) {
          this.compacting = false;
          return;
        }
        // The fsync may cover entries that startReady() applied while their
        // Ready waits for its own fsync. The core counts them as applied only
        // at advance(), so compaction waits for that.
        if (durable.index > this.raft.status().appliedIndex) {
          this.pendingCompaction = { index: durable.index, end };
          return;
        }
        this.compactTo(durable.index, end);
      },
      (err: unknown) => {
        if (this.stopped) return;
        if (generation !== this.stateGeneration) {
          this.compacting = false;
          return;
        }
        // As with the Raft log: after a failed fsync, nothing written since
        // the last good one may be counted as stored.
        this.failStop(new StorageWriteError(file, err));
      },
    );
  }

  /** Compacts the log up to a durable applied index and ends the snapshot in progress. */
  private compactTo(index: number, end: () => number): void {
    // The next snapshot waits for a full interval after this one, even when
    // a follower or a file being sent stops this one short of `index`: each
    // takes an fsync, and catchUpFloor() counts its intervals.
    this.snapshotAttemptIndex = index;
    try {
      const compactIndex = Math.min(index, this.catchUpFloor(index), ...this.compactionHolds.values());
      if (compactIndex <= this.snapshotIndex) {
        this.log.debug(
          { index, compactIndex, snapshotIndex: this.snapshotIndex },
          'snapshot skipped: a follower still needs the entries, or a snapshot file being saved or sent is older',
        );
        return;
      }
      const compacted = this.raft.compact(compactIndex, this.config.snapshotKeepEntries);
      this.raftLog.compact(compacted.snapshot, compacted.logStart);
      this.snapshotIndex = compacted.snapshot.index;
      this.metrics.snapshotsTaken.inc();
      // The newest file stays: a restarting peer that requested it fetches it on its next try.
      const newest = latestSnapshot(this.snapshotsDir());
      const pruned = pruneSnapshotsBelow(this.snapshotsDir(), compacted.snapshot.index, newest?.path);
      this.log.info(
        { snapshotIndex: compacted.snapshot.index, logStartIndex: compacted.logStart.index, ms: Math.round(end() * 1000), pruned },
        'took snapshot and compacted the log',
      );
    } catch (err) {
      this.log.error({ err, snapshotIndex: index }, 'compacting the log after a snapshot failed');
    } finally {
      this.compacting = false;
    }
  }

  /**
   * Returns the lowest index the leader's compaction to `index` may stop at,
   * so that a catching-up follower keeps the entries it needs next. Without
   * it, a follower whose snapshot took longer to copy, send and install than
   * the leader took to its next snapshot needed a new snapshot each time.
   * A follower counts with the index of a snapshot it accepted and has not
   * reported installed, or with its match index when it was heard within an
   * election timeout. One behind the log start needs a snapshot anyway. The
   * floor is never below the oldest compaction within catchUpBytesMax of
   * entry data, so the log stays bounded.
   */
  private catchUpFloor(index: number): number {
    const points = this.compactionPoints;
    points.push({ index, appliedBytes: this.appliedBytes });
    const oldestBytes = this.appliedBytes - catchUpBytesMax;
    while (points.length > catchUpPointsMax || (points.length > 1 && points[0]!.appliedBytes < oldestBytes)) points.shift();
    const status = this.raft.status();
    if (status.role !== 'leader') {
      this.snapshotsSentTo.clear();
      return index;
    }
    const contactTicksMax = electionTimeoutTicks(this.config);
    let floor = index;
    for (const peer of status.peers) {
      if (peer.id === this.config.id) continue;
      const sentIndex = this.snapshotsSentTo.get(peer.id);
      if (sentIndex !== undefined && peer.matchIndex >= sentIndex) this.snapshotsSentTo.delete(peer.id);
      // A follower installing a large snapshot may not respond meanwhile.
      const installing = sentIndex !== undefined && peer.matchIndex < sentIndex;
      if (!installing && peer.ticksSinceContact > contactTicksMax) continue;
      const needed = installing ? sentIndex : peer.matchIndex;
      if (needed < status.snapshotIndex) continue;
      floor = Math.min(floor, needed);
    }
    return Math.max(floor, points[0]!.index);
  }

  /**
   * Records that a follower has received and accepted the snapshot file at
   * `index`, so that compaction keeps the entries after it (catchUpFloor()).
   */
  snapshotDelivered(peerId: string, index: number): void {
    this.snapshotsSentTo.set(peerId, index);
  }

  /** Saves a copy of the state database as a snapshot file for peers, without compacting the log. */
  private saveSnapshotFile(): void {
    this.snapshotFileRequested = false;
    this.savingSnapshotFile = true;
    const startedMs = performance.now();
    const release = this.holdCompaction(this.store.summary().appliedIndex);
    this.store
      .saveSnapshot()
      .then((snapshot) => {
        this.metrics.snapshotBytes.set(snapshot.bytes);
        this.log.info(
          { snapshotIndex: snapshot.meta.index, bytes: snapshot.bytes, ms: Math.round(performance.now() - startedMs) },
          'saved snapshot file for peers',
        );
        this.emit('snapshotSaved', snapshot);
      })
      .catch((err: unknown) => {
        if (!this.stopped) this.log.error({ err }, 'saving a snapshot file failed');
      })
      .finally(() => {
        this.savingSnapshotFile = false;
        release();
      });
  }

  /**
   * Keeps the log from being compacted past `index` until the returned
   * function is called. The transport calls it with a snapshot file's index
   * while it sends the file, so that the file is still usable when it arrives.
   */
  holdCompaction(index: number): () => void {
    const holder = Symbol('compaction hold');
    this.compactionHolds.set(holder, index);
    return () => {
      this.compactionHolds.delete(holder);
    };
  }

  /**
   * Returns the newest snapshot file that a follower can catch up from: one
   * at or above the log's snapshot index, so the log has every entry after
   * it. Returns null, and saves a new file soon, when there is none.
   */
  snapshotToSend(): LocalSnapshot | null {
    const newest = latestSnapshot(this.snapshotsDir());
    if (newest !== null && newest.meta.index >= this.snapshotIndex) return newest;
    this.requestSnapshot();
    return null;
  }

  /** True while a snapshot file is being saved for peers. */
  get savingSnapshot(): boolean {
    return this.savingSnapshotFile;
  }

  /**
   * Saves a new snapshot file soon. The transport calls this when a follower
   * needs a snapshot and the newest file is too old or no longer matches its
   * SHA-256 sidecar. Without a new file, every retry would send the same one.
   */
  requestSnapshot(): void {
    // The file being saved is newer than any on disk, so it serves the request.
    if (this.stopped || this.savingSnapshotFile) return;
    this.snapshotFileRequested = true;
    this.scheduleDrive();
  }

  private expireProposals(): void {
    const olderThan = performance.now() - this.config.appendTimeoutMs;
    const count = this.proposals.expire(olderThan, errors.commitTimeout(this.config.appendTimeoutMs));
    if (count > 0) this.log.warn({ count, timeoutMs: this.config.appendTimeoutMs }, 'appends timed out before commit');
  }

  /**
   * Logs, on the leader, each follower that it has not heard from for an
   * election timeout (a warning), and each such follower once it responds
   * again. Without this, a stopped or cut-off follower shows only in
   * /status and in the debug log of its connection.
   */
  private reportPeerContact(): void {
    const status = this.raft.status();
    if (status.role !== 'leader') {
      this.silentPeers.clear();
      return;
    }
    const silentTicksMin = electionTimeoutTicks(this.config);
    for (const peer of status.peers) {
      if (peer.id === this.config.id) continue;
      const silent = peer.ticksSinceContact > silentTicksMin;
      if (silent === this.silentPeers.has(peer.id)) continue;
      const fields = { peerId: peer.id, lastContactMs: peer.ticksSinceContact * this.config.tickMs, matchIndex: peer.matchIndex };
      if (silent) {
        this.silentPeers.add(peer.id);
        this.log.warn(fields, 'follower not responding');
      } else {
        this.silentPeers.delete(peer.id);
        this.log.info(fields, 'follower responding again');
      }
    }
  }

  /** Sets the gauges that mirror the core's status. /metrics calls status() before each scrape. */
  private updateGauges(s: CoreStatus): void {
    const m = this.metrics;
    for (const role of ['leader', 'follower', 'candidate', 'precandidate'] as const) {
      m.role.set({ role }, s.role === role ? 1 : 0);
    }
    m.term.set(s.term);
    m.commitIndex.set(s.commitIndex);
    m.appliedIndex.set(this.appliedIndex);
    m.lastLogIndex.set(s.lastLogIndex);
    m.snapshotIndex.set(this.snapshotIndex);
    m.pendingAppends.set(this.inflightByValueset.size);
    m.pendingBytes.set(this.pendingBytes);
  }

  /** Returns the /status document: role, term, indexes, message count, digest and peers. */
  status(): MemberStatus {
    const core = this.raft.status();
    const summary = this.store.summary();
    this.updateGauges(core);
    this.metrics.messageCount.set(summary.messageCount);
    return {
      id: this.config.id,
      role: core.role,
      term: core.term,
      leaderId: core.leaderId,
      commitIndex: core.commitIndex,
      appliedIndex: this.appliedIndex,
      lastLogIndex: core.lastLogIndex,
      snapshotIndex: this.snapshotIndex,
      messageCount: summary.messageCount,
      digest: summary.digest,
      peers: core.peers.map((p) => ({
        id: p.id,
        matchIndex: p.matchIndex,
        nextIndex: p.nextIndex,
        lastContactMs: p.ticksSinceContact * this.config.tickMs,
      })),
    };
  }

  /**
   * Returns whether the member is ready: a leader is known, and everything
   * known committed is applied except at most `lagAllowed` entries. The
   * index a leader reported as committed counts too, so that a follower that
   * just restarted is not ready while far behind.
   */
  readiness(lagAllowed = 0): { ready: boolean; reason: string } {
    const core = this.raft.status();
    if (core.leaderId === null) return { ready: false, reason: 'no leader known' };
    const committed = core.role === 'leader' ? core.commitIndex : Math.max(core.commitIndex, this.leaderIndexSeen);
    if (this.appliedIndex < committed - lagAllowed) {
      const allowance = lagAllowed === 0 ? '' : ` by more than ${lagAllowed} entries`;
      return { ready: false, reason: `applied index ${this.appliedIndex} is behind commit index ${committed}${allowance}` };
    }
    if (core.role !== 'leader' && this.leaderIndexSeen - this.appliedIndex > appendLagMax) {
      return { ready: false, reason: `applied index ${this.appliedIndex} is more than ${appendLagMax} entries behind the leader's ${this.leaderIndexSeen}` };
    }
    return { ready: true, reason: 'ok' };
  }

  read(fromIndex: number, limit: number): StoredMessage[] {
    return this.store.read(fromIndex, limit);
  }

  /** Returns the folder of the local snapshot files. */
  snapshotsDir(): string {
    return snapshotsDirectory(this.config.dataDir);
  }

  /** Stops ticking, fails what is in flight, and closes the databases. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.batchTimer) clearTimeout(this.batchTimer);
    const err = errors.shuttingDown();
    for (const p of this.proposalQueue) p.reject(err);
    this.proposalQueue = [];
    this.proposals.rejectAll(err);
    this.appliedWaiters.rejectAll(err);
    try {
      if (this.latestHardState !== this.persistedHardState) this.raftLog.persist([], this.latestHardState);
      this.store.close();
      this.raftLog.close();
    } finally {
      // Appends waiting for a leader listen for this; they must learn of the
      // stop even when the last write fails on a broken disk.
      this.emit('stopped');
    }
    this.log.info({ appliedIndex: this.appliedIndex }, 'member stopped');
  }
}

export interface MemberStatus {
  readonly id: string;
  readonly role: Role;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastLogIndex: number;
  readonly snapshotIndex: number;
  readonly messageCount: number;
  readonly digest: string;
  readonly peers: readonly { id: string; matchIndex: number; nextIndex: number; lastContactMs: number }[];
}

/** Returns the INVALID_ARGUMENT error for a valueset outside 1..valuesetBytesMax bytes, or null. */
export function validateValueset(valueset: string): ReplogError | null {
  if (valueset.length === 0) return errors.valuesetEmpty();
  const bytes = oversizeValuesetBytes(valueset);
  return bytes === null ? null : errors.valuesetTooLong(bytes, valuesetBytesMax);
}

/** A failed write to one of the member's files; `file` names it. */
class StorageWriteError extends Error {
  constructor(
    readonly file: string,
    override readonly cause: unknown,
  ) {
    super(`writing ${file} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'StorageWriteError';
  }
}

/**
 * Runs `write`. An I/O error it throws (one with a string `code`, as SQLite's
 * SQLITE_FULL or Node's ENOSPC) is rethrown as a StorageWriteError naming
 * `file()`; any other error, such as a broken invariant, passes unchanged.
 */
function writingTo<T>(file: () => string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    const isIoError = err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
    throw isIoError ? new StorageWriteError(file(), err) : err;
  }
}

/** Returns the election timeout in ticks, at least 2. */
function electionTimeoutTicks(config: MemberConfig): number {
  return Math.max(2, Math.round(config.electionTimeoutMs / config.tickMs));
}

/** Returns the heartbeat interval in ticks, at least 1. */
function heartbeatTicks(config: MemberConfig): number {
  return Math.max(1, Math.round(config.heartbeatIntervalMs / config.tickMs));
}

function snapshotKey(meta: SnapshotMeta): string {
  return `${meta.index}/${meta.term}`;
}

function codeName(code: number): string {
  const names: Record<number, string> = { 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 8: 'RESOURCE_EXHAUSTED', 13: 'INTERNAL', 14: 'UNAVAILABLE' };
  return names[code] ?? String(code);
}
