import { assertInvariant } from './assert';
import type { NodeId, PeerProgress } from './types';

export type ProgressState = PeerProgress['state'];

/**
 * The leader's view of one follower's log.
 *
 * - probe: the leader does not know where the logs match. It sends one append
 *   and waits for the reply, or for a heartbeat response, before the next.
 * - replicate: the logs match up to matchIndex. Appends are pipelined, up to
 *   inflightMax in flight and inflightBytesMax bytes of entry data, and
 *   nextIndex moves ahead as they are sent.
 * - snapshot: the entries the follower needs are compacted. A snapshot message
 *   is on its way, and nothing more is sent until it is acknowledged or times out.
 */
export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is in flight and the next one waits. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot sent. */
  pendingSnapshotIndex = 0;
  ticksSinceContact = 0;
  /** Ticks in snapshot state. */
  ticksInSnapshot = 0;
  /** Heartbeat responses in replicate state while appends were in flight and matchIndex did not grow. */
  heartbeatsWithoutProgress = 0;
  /** The largest commit index sent to this follower in an append. */
  commitSent = 0;
  /** Last entry index of each append in flight, oldest first. */
  private inflight: number[] = [];
  /** Bytes of entry data of each append in flight, in the order of `inflight`. */
  private inflightSizes: number[] = [];
  private inflightBytes = 0;

  constructor(
    readonly id: NodeId,
    nextIndex: number,
    private readonly inflightMax: number,
    private readonly inflightBytesMax = Infinity,
  ) {
    this.nextIndex = nextIndex;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= this.inflightMax || (this.inflight.length > 0 && this.inflightBytes >= this.inflightBytesMax);
      case 'snapshot':
        return true;
    }
  }

  becomeProbe(): void {
    this.state = 'probe';
    this.nextIndex = this.matchIndex + 1;
    this.resetFlow();
  }

  /**
   * Lowers the match index to `lastIndex`, the end of a follower's log that
   * lost entries it had acknowledged, and probes from there.
   */
  forgetMatch(lastIndex: number): void {
    this.matchIndex = lastIndex;
    this.commitSent = Math.min(this.commitSent, lastIndex);
    this.becomeProbe();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.nextIndex = this.matchIndex + 1;
    this.resetFlow();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = 'snapshot';
    this.pendingSnapshotIndex = snapshotIndex;
    this.resetFlow();
  }

  /** Records a successful append up to `index` and returns whether matchIndex grew. */
  updateMatch(index: number): boolean {
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    if (index <= this.matchIndex) return false;
    this.matchIndex = index;
    this.heartbeatsWithoutProgress = 0;
    this.probeSent = false;
    this.freeInflightTo(index);
    return true;
  }

  /**
   * Moves nextIndex back after a rejection, to just after `probeIndex`, the
   * leader's estimate of the last matching entry, but never to or below matchIndex.
   */
  backOff(probeIndex: number): void {
    const nextIndex = this.nextIndex;
    if (this.state === 'replicate') this.becomeProbe();
    this.nextIndex = Math.max(this.matchIndex + 1, Math.min(nextIndex, probeIndex + 1));
    this.probeSent = false;
  }

  /** Records an append sent with entries up to `lastIndex` (none when lastIndex is null) and `bytes` of entry data. */
  recordSent(lastIndex: number | null, commit: number, bytes = 0): void {
    this.commitSent = Math.max(this.commitSent, commit);
    if (this.state === 'probe') {
      this.probeSent = true;
      return;
    }
    if (lastIndex === null) return;
    assertInvariant(lastIndex >= this.nextIndex, 'pipelined append starts at nextIndex', {
      peer: this.id,
      lastIndex,
      nextIndex: this.nextIndex,
    });
    this.nextIndex = lastIndex + 1;
    this.inflight.push(lastIndex);
    this.inflightSizes.push(bytes);
    this.inflightBytes += bytes;
  }

  /**
   * Records a heartbeat response. Returns whether pipelined appends look lost:
   * the follower responded to `heartbeatsMax` heartbeats since matchIndex last
   * grew while appends were in flight.
   */
  recordHeartbeatResponse(heartbeatsMax: number): boolean {
    this.ticksSinceContact = 0;
    this.probeSent = false;
    if (this.state !== 'replicate' || this.inflight.length === 0) {
      this.heartbeatsWithoutProgress = 0;
      return false;
    }
    this.heartbeatsWithoutProgress += 1;
    return this.heartbeatsWithoutProgress >= heartbeatsMax;
  }

  tick(): void {
    this.ticksSinceContact += 1;
    this.ticksInSnapshot = this.state === 'snapshot' ? this.ticksInSnapshot + 1 : 0;
  }

  toStatus(): PeerProgress {
    return {
      id: this.id,
      matchIndex: this.matchIndex,
      nextIndex: this.nextIndex,
      state: this.state,
      ticksSinceContact: this.ticksSinceContact,
    };
  }

  private freeInflightTo(index: number): void {
    let count = 0;
    while (count < this.inflight.length && (this.inflight[count] as number) <= index) {
      this.inflightBytes -= this.inflightSizes[count] as number;
      count += 1;
    }
    if (count > 0) {
      this.inflight.splice(0, count);
      this.inflightSizes.splice(0, count);
    }
  }

  private resetFlow(): void {
    this.probeSent = false;
    this.ticksInSnapshot = 0;
    this.heartbeatsWithoutProgress = 0;
    this.inflight = [];
    this.inflightSizes = [];
    this.inflightBytes = 0;
  }
}
