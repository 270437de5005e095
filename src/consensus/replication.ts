import { dataBytes, type RaftLog } from './log';
import { Progress } from './progress';
import type { AppendRequest, AppendResponse, Message, NodeId, PeerProgress, RaftConfig } from './types';

/**
 * Heartbeat responses from a pipelining follower, with appends in flight and
 * no progress, after which the leader takes those appends as lost. Responses
 * to appends leave the follower no later than responses to the heartbeats sent
 * after them, so two heartbeat intervals without progress mean a loss unless
 * the network reorders.
 */
const heartbeatsWithoutProgressMax = 2;

/** Returns the number of members that form a majority of `memberCount`. */
export function quorumSize(memberCount: number): number {
  return Math.floor(memberCount / 2) + 1;
}

/**
 * The leader's replication state: one Progress per other member, and the
 * appends, snapshots and heartbeats that keep their logs in step with its own.
 *
 * Appends are built lazily by sendAppends(), which the core calls once per
 * Ready, so all proposals between two Ready batches go out together.
 */
export class Replication {
  /** Set when sendAppends() may have something new to send. */
  needsSend = true;
  private readonly peers = new Map<NodeId, Progress>();
  /** Match indexes of every member in descending order, rebuilt by quorumMatchIndex(). */
  private readonly sortedMatches: number[];

  constructor(
    private readonly config: RaftConfig,
    private readonly term: number,
    lastIndex: number,
  ) {
    for (const id of config.peers) {
      if (id !== config.id) this.peers.set(id, new Progress(id, lastIndex + 1, config.inflightAppendsMax, config.inflightBytesMax));
    }
    this.sortedMatches = new Array<number>(this.peers.size + 1).fill(0);
  }

  /** Appends to `out` every append and snapshot message that the followers can take now. */
  sendAppends(log: RaftLog, out: Message[]): void {
    this.needsSend = false;
    for (const progress of this.peers.values()) this.sendToPeer(progress, log, out);
  }

  /** Returns the follower's match index, or 0 for an id that is not a follower. */
  matchIndexOf(id: NodeId): number {
    return this.peers.get(id)?.matchIndex ?? 0;
  }

  /** Appends a heartbeat for every follower to `out`. */
  sendHeartbeats(commit: number, out: Message[]): void {
    for (const progress of this.peers.values()) {
      out.push({
        type: 'heartbeat',
        from: this.config.id,
        to: progress.id,
        term: this.term,
        commit: Math.min(commit, progress.matchIndex),
        leaderCommit: commit,
      });
    }
  }

  /** Updates the follower's progress and returns whether its matchIndex grew. */
  handleAppendResponse(message: AppendResponse, log: RaftLog): boolean {
    const progress = this.peers.get(message.from);
    if (progress === undefined) return false;
    progress.ticksSinceContact = 0;
    if (!message.success) {
      this.handleRejection(progress, message, log);
      return false;
    }
    const grown = progress.updateMatch(message.matchIndex);
    // A success at the known match index also confirms a probe, because it shows where the logs match.
    const confirmsProbe = progress.state === 'probe' && message.matchIndex === progress.matchIndex;
    if (grown || confirmsProbe || progress.state === 'snapshot') {
      this.leaveProbeOrSnapshot(progress, log);
      this.needsSend = true;
    }
    return grown;
  }

  /**
   * Marks the follower active and lets it get more entries if it is behind.
   * A follower that responds to heartbeats but not to the appends in flight lost
   * them, so it goes back to probe state and gets them again. A follower whose
   * log ends below its match index lost entries it had acknowledged, so the
   * leader lowers that match to the follower's last index and probes from there.
   */
  handleHeartbeatResponse(from: NodeId, lastIndex: number, followerLastIndex: number | undefined): void {
    const progress = this.peers.get(from);
    if (progress === undefined) return;
    if (followerLastIndex !== undefined && followerLastIndex < progress.matchIndex) {
      this.config.logger?.warn(
        { term: this.term, peer: from, matchIndex: progress.matchIndex, lastIndex: followerLastIndex },
        'follower lost entries it had acknowledged, sending them again',
      );
      progress.forgetMatch(followerLastIndex);
      this.needsSend = true;
    }
    if (progress.recordHeartbeatResponse(heartbeatsWithoutProgressMax)) progress.becomeProbe();
    if (progress.matchIndex < lastIndex) this.needsSend = true;
  }

  /**
   * Advances the followers' clocks. A snapshot without a response within an
   * election timeout puts the follower back in probe state, which sends it again.
   * NOTE: a transfer slower than an election timeout gets the same snapshot
   * message again, so the driver should not restart a transfer in progress.
   */
  tick(): void {
    for (const progress of this.peers.values()) {
      progress.tick();
      if (progress.ticksInSnapshot >= this.config.electionTimeoutTicks) {
        progress.becomeProbe();
        this.needsSend = true;
      }
    }
  }

  /** Returns whether a majority, the leader included, was heard from within an election timeout. */
  isQuorumActive(): boolean {
    let active = 1;
    for (const progress of this.peers.values()) {
      if (progress.ticksSinceContact < this.config.electionTimeoutTicks) active += 1;
    }
    return active >= quorumSize(this.config.peers.length);
  }

  /** Returns the largest index stored on a majority, counting the leader's persisted index. */
  quorumMatchIndex(ownPersistedIndex: number): number {
    // This runs on every acknowledgement, so it sorts a reused array in place.
    // Array.prototype.sort allocated about 3% of a leader's bytes at 1,000 appends/s.
    const matches = this.sortedMatches;
    matches[0] = ownPersistedIndex;
    let count = 1;
    for (const progress of this.peers.values()) {
      let position = count++;
      while (position > 0 && matches[position - 1]! < progress.matchIndex) {
        matches[position] = matches[position - 1]!;
        position--;
      }
      matches[position] = progress.matchIndex;
    }
    return matches[quorumSize(this.config.peers.length) - 1]!;
  }

  peerStatus(): PeerProgress[] {
    return [...this.peers.values()].map((progress) => progress.toStatus());
  }

  private sendToPeer(progress: Progress, log: RaftLog, out: Message[]): void {
    while (!progress.isPaused()) {
      const prevLogIndex = progress.nextIndex - 1;
      const prevLogTerm = log.termAt(prevLogIndex);
      if (prevLogTerm === undefined) {
        this.sendSnapshot(progress, log, out);
        return;
      }
      const entries =
        progress.nextIndex > log.lastIndex
          ? []
          : log.slice(progress.nextIndex, this.config.appendEntriesMax, this.config.appendBytesMax);
      const last = entries[entries.length - 1];
      if (last === undefined && !this.needsEmptyAppend(progress, log)) return;
      const append: AppendRequest = {
        type: 'append',
        from: this.config.id,
        to: progress.id,
        term: this.term,
        prevLogIndex,
        prevLogTerm,
        entries,
        commit: log.commitIndex,
      };
      // In replicate state every entry sent is acknowledged or on its way,
      // so a reply to a commit notice would repeat the acknowledgement. One
      // that was lost shows in heartbeat replies, which then probe again.
      const commitOnly = last === undefined && progress.state === 'replicate';
      out.push(commitOnly ? { ...append, noReply: true } : append);
      progress.recordSent(last === undefined ? null : last.index, log.commitIndex, dataBytes(entries));
      if (last === undefined || progress.state !== 'replicate') return;
    }
  }

  /** Returns whether an append without entries is worth sending: it carries a new commit index or probes the logs. */
  private needsEmptyAppend(progress: Progress, log: RaftLog): boolean {
    if (progress.commitSent < log.commitIndex) return true;
    return progress.state === 'probe' && progress.matchIndex < progress.nextIndex - 1;
  }

  private sendSnapshot(progress: Progress, log: RaftLog, out: Message[]): void {
    const snapshot = log.snapshot;
    const resent = progress.pendingSnapshotIndex === snapshot.index;
    out.push({ type: 'snapshot', from: this.config.id, to: progress.id, term: this.term, snapshot });
    progress.becomeSnapshot(snapshot.index);
    const fields = { term: this.term, peer: progress.id, snapshotIndex: snapshot.index, nextIndex: progress.nextIndex };
    // An unreachable follower gets the same snapshot every election timeout, so repeats log at debug level.
    if (resent) this.config.logger?.debug(fields, 'sending snapshot');
    else this.config.logger?.info(fields, 'sending snapshot');
  }

  private handleRejection(progress: Progress, message: AppendResponse, log: RaftLog): void {
    // A hint below matchIndex belongs to an append that a later success superseded.
    if (progress.state === 'snapshot' || message.rejectHintIndex < progress.matchIndex) return;
    const probeIndex =
      message.rejectHintTerm > 0
        ? log.findConflictByTerm(message.rejectHintIndex, message.rejectHintTerm)
        : message.rejectHintIndex;
    progress.backOff(probeIndex);
    this.needsSend = true;
  }

  private leaveProbeOrSnapshot(progress: Progress, log: RaftLog): void {
    if (progress.state === 'probe') {
      progress.becomeReplicate();
      return;
    }
    if (progress.state !== 'snapshot') return;
    const installed = progress.matchIndex >= progress.pendingSnapshotIndex;
    if (installed || progress.matchIndex >= log.logStart.index) progress.becomeReplicate();
  }
}
