import { assertInvariant } from './assert';
import { committedEntriesPerReadyMax, entryCacheBytesDefault, entryCacheDefault, validateRaftConfig } from './config';
import { appendFromLeader, success } from './follower';
import type { AppendOutcome } from './follower';
import { RaftLog } from './log';
import type { Compaction } from './log';
import { quorumSize, Replication } from './replication';
import { EntryType } from './types';
import type {
  AppendRequest,
  CoreStatus,
  Entry,
  HardState,
  HeartbeatRequest,
  Message,
  NodeId,
  ProposeResult,
  RaftConfig,
  Ready,
  RestoredState,
  Role,
  SnapshotMeta,
  SnapshotRequest,
  TimeoutNowRequest,
  SoftState,
  VoteRequest,
  VoteResponse,
} from './types';

const emptyData = new Uint8Array(0);

/**
 * The Raft consensus core of one member: roles, terms, votes, the log and the
 * leader's replication. It is pure and deterministic. Input is tick(),
 * step(message) and propose(data), output one Ready batch at a time, and
 * randomness comes only from config.random.
 *
 * Besides basic Raft it implements pre-vote, check-quorum with the
 * follower's leader lease, pipelined replication with fast back-off, and
 * snapshots by metadata.
 */
export class Raft {
  private readonly config: RaftConfig;
  private readonly log: RaftLog;
  private term: number;
  private vote: NodeId | null;
  private role: Role = 'follower';
  private leaderId: NodeId | null = null;
  /**
   * Ticks since the election timer was reset. A follower resets it on leader
   * contact and on granting a vote. A leader wraps it every election timeout.
   */
  private electionElapsed = 0;
  /** Randomized in [electionTimeoutTicks, 2 * electionTimeoutTicks) on every reset. */
  private randomizedElectionTimeoutTicks: number;
  private heartbeatElapsed = 0;
  /** Whether this member still withholds its votes, see votesHeld(). */
  private holdingVotes: boolean;
  /** While withholding votes: the commit index of the first append from a leader, or null before it. */
  private holdUntilIndex: number | null = null;
  /** The follower this leader hands its role to, while it does. */
  private transferTarget: NodeId | null = null;
  /** Ticks since the handover started. It is abandoned after an election timeout. */
  private transferElapsed = 0;
  private timeoutNowSent = false;
  /** Set while this member campaigns because its leader handed over its role. */
  private transferCampaign = false;
  /** Cleared by leaveElections(): the member is shutting down and must not become leader. */
  private campaigns = true;
  /** Votes received in the current election, by voter. */
  private readonly votes = new Map<NodeId, boolean>();
  /** The leader's per-follower state, or null unless this member leads. */
  private replication: Replication | null = null;
  private outbox: Message[] = [];
  /** A snapshot received from the leader that the next Ready installs. */
  private pendingSnapshot: SnapshotMeta | null = null;
  /** The hard and soft state of the previous Ready, to tell whether they changed. */
  private readyHardState: HardState;
  private readySoftState: SoftState;

  constructor(config: RaftConfig, restored: RestoredState) {
    validateRaftConfig(config);
    this.config = config;
    const reader = config.entryReader;
    const cache = reader
      ? { reader, keepMax: config.entryCacheMax ?? entryCacheDefault, keepBytesMax: config.entryCacheBytesMax ?? entryCacheBytesDefault }
      : null;
    this.log = new RaftLog(restored, cache);
    this.term = restored.hardState.term;
    this.vote = restored.hardState.vote;
    this.readyHardState = restored.hardState;
    this.randomizedElectionTimeoutTicks = this.drawElectionTimeout();
    this.readySoftState = this.softState();
    this.holdingVotes = config.holdVotes === true;
    this.config.logger?.info(
      {
        term: this.term,
        vote: this.vote,
        commitIndex: this.log.commitIndex,
        appliedIndex: this.log.appliedIndex,
        lastLogIndex: this.log.lastIndex,
        snapshotIndex: this.log.snapshot.index,
      },
      'restored raft state',
    );
  }

  /** Advances the logical clock by one tick. */
  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Handles one message addressed to this member. */
  step(message: Message): void {
    if (!this.isAddressedHere(message)) return;
    if (message.term > this.term && !this.stepHigherTerm(message)) return;
    if (message.term < this.term) {
      this.respondToStaleTerm(message);
      return;
    }
    this.dispatch(message);
  }

  /**
   * Appends one Normal entry per element of `data` at indexes firstIndex,
   * firstIndex + 1, and so on. Only the leader accepts proposals. Others
   * return the leader they know of, if any.
   */
  propose(data: readonly Uint8Array[]): ProposeResult {
    if (this.role !== 'leader') return { ok: false, leaderId: this.leaderId };
    // The follower taking over must have the whole log, so it must stop growing.
    if (this.transferTarget !== null) return { ok: false, leaderId: null };
    const firstIndex = this.log.lastIndex + 1;
    const entries = data.map(
      (bytes, offset): Entry => ({ index: firstIndex + offset, term: this.term, type: EntryType.Normal, data: bytes }),
    );
    this.log.append(entries);
    this.leaderReplication().needsSend = true;
    return { ok: true, firstIndex, term: this.term };
  }

  /**
   * Starts handing the leader role to follower `to`. Proposals are rejected
   * from now on. Once `to` has the whole log, it gets a timeoutNow message
   * and campaigns at once, without a pre-vote. Returns false when this member
   * is not the leader or `to` is not another member. The handover is
   * abandoned when no new term starts within an election timeout.
   */
  transferLeadership(to: NodeId): boolean {
    if (this.role !== 'leader' || to === this.config.id || !this.config.peers.includes(to)) return false;
    this.transferTarget = to;
    this.transferElapsed = 0;
    this.timeoutNowSent = false;
    this.config.logger?.info({ term: this.term, to }, 'handing over leadership');
    this.leaderReplication().needsSend = true;
    this.maybeSendTimeoutNow();
    return true;
  }

  /**
   * Stops this member from campaigning, for a member that is shutting down:
   * its election timer and timeoutNow no longer start an election, so it
   * cannot become leader on its way out. It still votes and follows.
   */
  leaveElections(): void {
    this.campaigns = false;
  }

  /**
   * Returns whether this member still withholds its votes (RaftConfig.holdVotes).
   * It withholds them until its commit index reaches two marks, with its log
   * on disk up to there. The first is the commit index of the first append
   * from a leader, which covers every entry committed before this member
   * started. The second is an entry of the current term, which a leader
   * commits only after every entry of earlier terms. The member then has every
   * entry it may have helped commit before it lost its data.
   */
  votesHeld(): boolean {
    if (!this.holdingVotes) return false;
    const commit = this.log.commitIndex;
    const caughtUp =
      this.holdUntilIndex !== null &&
      commit >= this.holdUntilIndex &&
      commit > 0 &&
      this.log.termAt(commit) === this.term &&
      this.log.persistedIndex >= commit;
    if (!caughtUp) return true;
    this.holdingVotes = false;
    this.config.logger?.info({ term: this.term, commitIndex: commit }, 'caught up after losing its data, voting again');
    return false;
  }

  /** Returns whether ready() has anything for the driver. */
  hasReady(): boolean {
    return (
      this.outbox.length > 0 ||
      this.pendingSnapshot !== null ||
      this.log.hasUnstable() ||
      this.log.hasCommittedToHand() ||
      this.replication?.needsSend === true ||
      this.hardStateChanged() ||
      this.softStateChanged()
    );
  }

  /**
   * Takes the pending batch of work. The leader builds its appends here, one
   * per follower for all proposals since the previous call, or more when the
   * follower is pipelining and one message cannot hold them.
   */
  ready(): Ready {
    if (this.replication !== null) this.replication.sendAppends(this.log, this.outbox);
    const softState = this.softState();
    const hardState = this.hardState();
    const ready: Ready = {
      softState,
      hardState: this.hardStateChanged() ? hardState : null,
      snapshot: this.pendingSnapshot,
      entries: this.log.takeUnstable(),
      messages: this.outbox,
      committedEntries: this.log.takeCommitted(committedEntriesPerReadyMax),
    };
    this.readySoftState = softState;
    this.readyHardState = hardState;
    this.pendingSnapshot = null;
    this.outbox = [];
    return ready;
  }

  /**
   * Records that the driver fsync'd and applied `ready`. Call it once for
   * every Ready, in the order ready() returned them. Only here does the leader
   * count its own entries towards commit.
   */
  advance(ready: Ready): void {
    if (ready.snapshot !== null) this.log.appliedTo(ready.snapshot.index);
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) this.log.appliedTo(lastApplied.index);
    if (this.role === 'leader') this.maybeCommit();
  }

  /**
   * Hands out committed entries that an earlier Ready persisted and that no
   * Ready has handed out yet. A driver whose Ready waits for its fsync applies
   * them meanwhile and reports them with appliedTo(). They follow every
   * committed entry handed out before, and the next Ready's follow them.
   */
  takeStoredCommitted(): Entry[] {
    if (this.pendingSnapshot !== null) return [];
    return this.log.takeCommitted(committedEntriesPerReadyMax, this.log.persistedIndex);
  }

  /** Records that the driver applied the entries takeStoredCommitted() handed out, up to `index`. */
  appliedTo(index: number): void {
    this.log.appliedTo(index);
  }

  /**
   * Records that the state machine has a snapshot at `snapshotIndex` and drops
   * the in-memory entries at or below snapshotIndex - keepEntries. Returns the
   * snapshot and log start for storage. Throws RangeError when snapshotIndex
   * is above the applied index or already compacted.
   */
  compact(snapshotIndex: number, keepEntries: number): Compaction {
    if (!Number.isInteger(keepEntries) || keepEntries < 0) {
      throw new RangeError(`invalid keepEntries ${keepEntries}: must be an integer of at least 0`);
    }
    if (snapshotIndex > this.log.appliedIndex) {
      throw new RangeError(
        `cannot compact at index ${snapshotIndex}: above the applied index ${this.log.appliedIndex}`,
      );
    }
    const compaction = this.log.compact(snapshotIndex, keepEntries);
    this.config.logger?.info(
      { snapshotIndex: compaction.snapshot.index, logStartIndex: compaction.logStart.index },
      'compacted log',
    );
    return compaction;
  }

  status(): CoreStatus {
    return {
      id: this.config.id,
      role: this.role,
      leaderId: this.leaderId,
      term: this.term,
      commitIndex: this.log.commitIndex,
      appliedIndex: this.log.appliedIndex,
      lastLogIndex: this.log.lastIndex,
      snapshotIndex: this.log.snapshot.index,
      peers: this.replication?.peerStatus() ?? [],
    };
  }

  /** Returns the term of an entry still in memory or of logStart, or undefined for any other index. */
  termAt(index: number): number | undefined {
    return this.log.termAt(index);
  }

  // Clock.

  private tickElection(): void {
    this.electionElapsed += 1;
    if (this.electionElapsed >= this.randomizedElectionTimeoutTicks) {
      // A member that withholds its votes does not vote for itself either:
      // with the votes of members that lack entries it had helped commit, it
      // could win with its empty log.
      if (this.campaigns && !this.votesHeld()) this.campaign();
      else this.resetElectionTimer();
      return;
    }
    // The first vote requests of a handover can find no connection to members
    // this one never talked to as a follower, so they go again every heartbeat.
    if (this.transferCampaign && this.role === 'candidate' && this.electionElapsed % this.config.heartbeatIntervalTicks === 0) {
      this.requestMissingVotes();
    }
  }

  private tickLeader(): void {
    const replication = this.leaderReplication();
    replication.tick();
    this.electionElapsed += 1;
    if (this.electionElapsed >= this.config.electionTimeoutTicks) this.electionElapsed = 0;
    if (this.transferTarget !== null) {
      this.transferElapsed += 1;
      if (this.transferElapsed >= this.config.electionTimeoutTicks) {
        this.config.logger?.warn({ term: this.term, to: this.transferTarget }, 'leadership handover timed out; leading on');
        this.transferTarget = null;
      }
    }
    if (this.config.checkQuorum && !replication.isQuorumActive()) {
      this.config.logger?.warn({ term: this.term }, 'stepping down: no majority heard within the election timeout');
      this.becomeFollower(this.term, null);
      return;
    }
    this.heartbeatElapsed += 1;
    if (this.heartbeatElapsed < this.config.heartbeatIntervalTicks) return;
    this.heartbeatElapsed = 0;
    replication.sendHeartbeats(this.log.commitIndex, this.outbox);
  }

  // Message dispatch.

  private isAddressedHere(message: Message): boolean {
    const { id, peers } = this.config;
    if (message.to === id && message.from !== id && peers.includes(message.from)) return true;
    this.config.logger?.debug({ from: message.from, to: message.to, type: message.type }, 'dropped misaddressed message');
    return false;
  }

  /**
   * Handles a message from a later term. Returns whether to go on and dispatch
   * it. Pre-vote requests and granted pre-vote responses leave the term alone.
   * Every other message makes this member a follower in the new term.
   */
  private stepHigherTerm(message: Message): boolean {
    if (message.type === 'vote') {
      if (this.config.checkQuorum && this.inLeaderLease() && message.transfer !== true) {
        // A live leader's followers ignore elections, so a rejoining member cannot depose it.
        this.config.logger?.debug({ term: this.term, candidate: message.from }, 'ignored vote request in leader lease');
        if (message.preVote) this.sendVoteResponse(message, false);
        return false;
      }
      if (message.preVote) return true;
    }
    if (message.type === 'voteResponse' && message.preVote && message.granted) return true;
    const fromLeader = message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshot';
    // Only a granted vote resets the election timer (Ongaro and Ousterhout,
    // Raft, Figure 2), so candidates that cannot win do not keep postponing
    // a member that can.
    const electionElapsed = this.electionElapsed;
    this.becomeFollower(message.term, fromLeader ? message.from : null);
    if (message.type === 'vote') this.electionElapsed = electionElapsed;
    return true;
  }

  /** Responds to a message from an earlier term so that its sender learns the current term. */
  private respondToStaleTerm(message: Message): void {
    if (message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshot') {
      this.sendAppendResponse(message.from, { success: false, matchIndex: 0, rejectHintIndex: 0, rejectHintTerm: 0 });
    } else if (message.type === 'vote') {
      this.sendVoteResponse(message, false);
    }
    // Responses from earlier terms are stale and dropped.
  }

  private dispatch(message: Message): void {
    switch (message.type) {
      case 'vote':
        return this.handleVoteRequest(message);
      case 'voteResponse':
        return this.handleVoteResponse(message);
      case 'append':
        return this.handleAppend(message);
      case 'heartbeat':
        return this.handleHeartbeat(message);
      case 'snapshot':
        return this.handleSnapshot(message);
      case 'appendResponse':
        if (this.replication !== null && this.replication.handleAppendResponse(message, this.log)) this.maybeCommit();
        this.maybeSendTimeoutNow();
        return;
      case 'timeoutNow':
        return this.handleTimeoutNow(message);
      case 'heartbeatResponse':
        this.replication?.handleHeartbeatResponse(message.from, this.log.lastIndex, message.lastIndex);
        return;
    }
  }

  // Elections.

  private campaign(): void {
    if (this.config.preVote) this.becomePreCandidate();
    else this.becomeCandidate();
    this.requestVotes();
  }

  /** Requests every other member's vote. `transfer` marks an election that the leader requested. */
  private requestVotes(transfer = false): void {
    const preVote = this.role === 'precandidate';
    const term = preVote ? this.term + 1 : this.term;
    this.votes.clear();
    this.votes.set(this.config.id, true);
    if (this.tallyVotes()) return;
    for (const peer of this.config.peers) {
      if (peer !== this.config.id) this.outbox.push(this.voteRequest(peer, term, preVote, transfer));
    }
  }

  /** Returns a vote request to `peer` for `term`, with this member's last log entry. */
  private voteRequest(peer: NodeId, term: number, preVote: boolean, transfer: boolean): VoteRequest {
    return {
      type: 'vote',
      from: this.config.id,
      to: peer,
      term,
      preVote,
      lastLogIndex: this.log.lastIndex,
      lastLogTerm: this.log.lastTerm,
      ...(transfer ? { transfer } : {}),
    };
  }

  /** Campaigns at once when this member is a follower, because its leader handed over its role. */
  private handleTimeoutNow(message: TimeoutNowRequest): void {
    if (this.role !== 'follower') return;
    if (!this.campaigns) {
      this.config.logger?.info({ term: this.term, from: message.from }, 'leader handed over its role, but this member is shutting down; not campaigning');
      return;
    }
    this.config.logger?.info({ term: this.term, from: message.from }, 'leader handed over its role; campaigning now');
    this.becomeCandidate();
    this.transferCampaign = true;
    this.requestVotes(true);
  }

  /** Sends the handover's vote request again to every member that has not responded to it. */
  private requestMissingVotes(): void {
    for (const peer of this.config.peers) {
      if (peer !== this.config.id && !this.votes.has(peer)) this.outbox.push(this.voteRequest(peer, this.term, false, true));
    }
  }

  /** Sends the handover's timeoutNow once its target has every entry of the log. */
  private maybeSendTimeoutNow(): void {
    const to = this.transferTarget;
    if (to === null || this.timeoutNowSent) return;
    if (this.leaderReplication().matchIndexOf(to) < this.log.lastIndex) return;
    this.timeoutNowSent = true;
    this.outbox.push({ type: 'timeoutNow', from: this.config.id, to, term: this.term });
  }

  private handleVoteRequest(message: VoteRequest): void {
    if (this.votesHeld()) {
      this.sendVoteResponse(message, false);
      this.config.logger?.debug({ term: this.term, candidate: message.from, preVote: message.preVote }, 'held vote until caught up');
      return;
    }
    const canVote =
      this.vote === message.from ||
      (this.vote === null && this.leaderId === null) ||
      (message.preVote && message.term > this.term);
    const upToDate = this.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    // A pre-vote fails while this member still hears from a leader.
    const leaderAlive = message.preVote && this.inLeaderLease();
    const granted = canVote && upToDate && !leaderAlive;
    this.sendVoteResponse(message, granted);
    this.config.logger?.debug(
      { term: this.term, candidate: message.from, preVote: message.preVote, granted, upToDate },
      'responded to vote request',
    );
    if (granted && !message.preVote) {
      this.vote = message.from;
      this.electionElapsed = 0;
    }
  }

  private handleVoteResponse(message: VoteResponse): void {
    if (this.role === 'precandidate') {
      // A granted pre-vote carries the requested term, a rejection the voter's own term.
      const expectedTerm = message.granted ? this.term + 1 : this.term;
      if (!message.preVote || message.term !== expectedTerm) return;
    } else if (this.role !== 'candidate' || message.preVote) {
      return;
    }
    if (this.votes.has(message.from)) return;
    this.votes.set(message.from, message.granted);
    this.tallyVotes();
  }

  /** Acts on the election if the votes received decide it, and returns whether they do. */
  private tallyVotes(): boolean {
    let granted = 0;
    for (const vote of this.votes.values()) if (vote) granted += 1;
    const rejected = this.votes.size - granted;
    const quorum = quorumSize(this.config.peers.length);
    if (granted >= quorum) {
      if (this.role === 'precandidate') {
        this.becomeCandidate();
        this.requestVotes();
      } else {
        this.becomeLeader();
      }
      return true;
    }
    if (rejected >= quorum) {
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  private sendVoteResponse(request: VoteRequest, granted: boolean): void {
    this.outbox.push({
      type: 'voteResponse',
      from: this.config.id,
      to: request.from,
      term: granted ? request.term : this.term,
      preVote: request.preVote,
      granted,
    });
  }

  // Follower side of replication.

  /** Makes this member follow `leaderId` in the current term and resets its election timer. */
  private followLeader(leaderId: NodeId): void {
    assertInvariant(this.role !== 'leader', 'at most one leader per term', { term: this.term, other: leaderId });
    if (this.role !== 'follower' || this.leaderId !== leaderId) this.becomeFollower(this.term, leaderId);
    this.electionElapsed = 0;
  }

  private handleAppend(message: AppendRequest): void {
    this.followLeader(message.from);
    if (this.holdingVotes) this.holdUntilIndex ??= message.commit;
    const outcome = appendFromLeader(this.log, message);
    if (!outcome.success) {
      this.config.logger?.debug(
        {
          term: this.term,
          prevLogIndex: message.prevLogIndex,
          prevLogTerm: message.prevLogTerm,
          hintIndex: outcome.rejectHintIndex,
          hintTerm: outcome.rejectHintTerm,
        },
        'rejected append',
      );
    }
    if (outcome.success && message.noReply === true) return;
    this.sendAppendResponse(message.from, outcome);
  }

  private handleHeartbeat(message: HeartbeatRequest): void {
    this.followLeader(message.from);
    // The leader sends at most the match index it recorded for this member.
    // A member that lost entries since (an empty data folder) has fewer, and
    // those it has still match, so it commits what it has.
    this.log.commitTo(Math.min(message.commit, this.log.lastIndex));
    this.outbox.push({ type: 'heartbeatResponse', from: this.config.id, to: message.from, term: this.term, lastIndex: this.log.lastIndex });
  }

  /**
   * Installs the leader's snapshot unless the log already contains its last
   * entry. Such a log may also contain entries after it that this member
   * acknowledged, so it is kept and only the commit index moves.
   */
  private handleSnapshot(message: SnapshotRequest): void {
    this.followLeader(message.from);
    const snapshot = message.snapshot;
    if (snapshot.index <= this.log.commitIndex || this.log.termAt(snapshot.index) === snapshot.term) {
      this.log.commitTo(snapshot.index);
      this.sendAppendResponse(message.from, success(this.log.commitIndex));
      return;
    }
    this.log.restore(snapshot);
    this.pendingSnapshot = snapshot;
    this.config.logger?.info(
      { term: this.term, leaderId: message.from, snapshotIndex: snapshot.index, snapshotTerm: snapshot.term },
      'installing snapshot',
    );
    this.sendAppendResponse(message.from, success(snapshot.index));
  }

  private sendAppendResponse(to: NodeId, outcome: AppendOutcome): void {
    this.outbox.push({ type: 'appendResponse', from: this.config.id, to, term: this.term, ...outcome });
  }

  // Leader side.

  /**
   * Commits the largest index stored on a majority, if its entry is of the
   * current term. An entry of an earlier term never commits by counting
   * replicas, because a later leader may still overwrite it. It commits along
   * with the current term's entry after it.
   */
  private maybeCommit(): void {
    const replication = this.leaderReplication();
    const index = replication.quorumMatchIndex(this.log.persistedIndex);
    if (index <= this.log.commitIndex || this.log.termAt(index) !== this.term) return;
    this.log.commitTo(index);
    replication.needsSend = true;
  }

  private leaderReplication(): Replication {
    assertInvariant(this.replication !== null, 'only the leader replicates', { role: this.role, term: this.term });
    return this.replication;
  }

  // Role changes.

  private becomeFollower(term: number, leaderId: NodeId | null): void {
    assertInvariant(term >= this.term, 'term never decreases', { term: this.term, newTerm: term });
    const changed = term > this.term || this.role !== 'follower' || this.leaderId !== leaderId;
    if (term > this.term) {
      this.term = term;
      this.vote = null;
    }
    this.role = 'follower';
    this.leaderId = leaderId;
    this.replication = null;
    this.transferTarget = null;
    this.transferCampaign = false;
    this.votes.clear();
    this.resetElectionTimer();
    if (changed) this.config.logger?.info({ term, leaderId }, 'became follower');
  }

  private becomePreCandidate(): void {
    assertInvariant(this.role !== 'leader', 'a leader never campaigns', { term: this.term });
    const repeated = this.role === 'precandidate';
    this.role = 'precandidate';
    this.leaderId = null;
    this.resetElectionTimer();
    const fields = { term: this.term, lastLogIndex: this.log.lastIndex, lastLogTerm: this.log.lastTerm };
    // A member cut off from the others repeats this every timeout, so repeats log at debug level.
    if (repeated) this.config.logger?.debug(fields, 'became precandidate');
    else this.config.logger?.info(fields, 'became precandidate');
  }

  private becomeCandidate(): void {
    assertInvariant(this.role !== 'leader', 'a leader never campaigns', { term: this.term });
    this.transferCampaign = false;
    this.term += 1;
    this.vote = this.config.id;
    this.role = 'candidate';
    this.leaderId = null;
    this.resetElectionTimer();
    this.config.logger?.info(
      { term: this.term, lastLogIndex: this.log.lastIndex, lastLogTerm: this.log.lastTerm },
      'became candidate',
    );
  }

  private becomeLeader(): void {
    assertInvariant(this.role === 'candidate', 'only a candidate becomes leader', { role: this.role });
    this.role = 'leader';
    this.leaderId = this.config.id;
    this.transferTarget = null;
    this.transferCampaign = false;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.replication = new Replication(this.config, this.term, this.log.lastIndex);
    // An entry of the new term lets the entries of earlier terms commit.
    this.log.append([{ index: this.log.lastIndex + 1, term: this.term, type: EntryType.Noop, data: emptyData }]);
    this.config.logger?.info({ term: this.term, leaderId: this.config.id, lastLogIndex: this.log.lastIndex }, 'became leader');
  }

  private resetElectionTimer(): void {
    this.electionElapsed = 0;
    this.randomizedElectionTimeoutTicks = this.drawElectionTimeout();
  }

  private drawElectionTimeout(): number {
    const base = this.config.electionTimeoutTicks;
    return base + Math.min(base - 1, Math.floor(this.config.random() * base));
  }

  /** Returns whether this member heard from a leader within the election timeout. */
  private inLeaderLease(): boolean {
    return this.leaderId !== null && this.electionElapsed < this.config.electionTimeoutTicks;
  }

  private hardStateChanged(): boolean {
    const previous = this.readyHardState;
    return previous.term !== this.term || previous.vote !== this.vote || previous.commit !== this.log.commitIndex;
  }

  private softStateChanged(): boolean {
    const previous = this.readySoftState;
    return previous.role !== this.role || previous.leaderId !== this.leaderId || previous.term !== this.term;
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.commitIndex };
  }

  private softState(): SoftState {
    return { role: this.role, leaderId: this.leaderId, term: this.term };
  }
}
