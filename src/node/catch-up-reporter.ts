import type { Logger } from 'pino';
import type { Entry, Message, RestoredState } from '../consensus/types';

/** Minimum gap between two progress lines while entries arrive from the leader. */
const progressIntervalMs = 2000;

/**
 * Logs how a restarting member catches up, so an operator can follow it: first
 * the replay of entries committed before the restart, then what arrives from
 * the leader. The second part counts the entries written to the log, so
 * rejected probes and entries sent twice do not count. It logs at most one line
 * every two seconds and stops once the log reaches the leader's commit index.
 */
export class CatchUpReporter {
  private replayTo: number;
  private readonly replayFrom: number;
  private readonly startedMs = performance.now();
  private replayedEntries = 0;
  private replayDone: boolean;
  private received = { entries: 0, fromIndex: 0, toIndex: 0, leaderId: '' };
  /** The leader that sent the latest append with entries, or '' before any. */
  private leaderId = '';
  private lastReportMs = performance.now();
  private leaderCommit = 0;
  private caughtUp = false;

  constructor(
    private readonly log: Logger,
    restored: RestoredState,
    private readonly messageCountAtStart: number,
  ) {
    this.replayFrom = restored.appliedIndex + 1;
    this.replayTo = restored.hardState.commit;
    this.replayDone = this.replayTo < this.replayFrom;
    if (!this.replayDone) {
      log.info({ fromIndex: this.replayFrom, toIndex: this.replayTo }, 'replaying committed entries from the log');
    }
  }

  applied(appliedIndex: number, entryCount: number): void {
    if (this.replayDone) return;
    this.replayedEntries += entryCount;
    if (appliedIndex < this.replayTo) return;
    this.replayDone = true;
    this.log.info(
      {
        fromIndex: this.replayFrom,
        toIndex: appliedIndex,
        entries: this.replayedEntries,
        messageCountBefore: this.messageCountAtStart,
        ms: Math.round(performance.now() - this.startedMs),
      },
      'replay finished',
    );
  }

  /**
   * Ends the report without a line: a leader's log has every committed entry,
   * and the appends it gets after a handover are not a catch-up.
   */
  becameLeader(): void {
    this.caughtUp = true;
    this.replayDone = true;
  }

  observe(message: Message): void {
    if (this.caughtUp || message.type !== 'append' || message.entries.length === 0) return;
    this.leaderCommit = Math.max(this.leaderCommit, message.commit);
    this.leaderId = message.from;
  }

  /**
   * Notes a snapshot from the leader, which replaces the local log up to its
   * index. When the leader had committed nothing past it (`leaderCommit`, the
   * highest commit index the leader reported), the member has caught up,
   * although no entry may arrive until clients append again.
   */
  installedSnapshot(snapshotIndex: number, leaderCommit: number): void {
    if (this.caughtUp) return;
    this.replayDone = true;
    this.leaderCommit = Math.max(this.leaderCommit, leaderCommit);
    if (snapshotIndex < this.leaderCommit) return;
    this.caughtUp = true;
    const ms = Math.round(performance.now() - this.startedMs);
    this.log.info({ snapshotIndex, leaderCommit: this.leaderCommit, ms }, 'caught up with the leader');
  }

  /** Counts the entries of a Ready written to the log, and logs progress. */
  persisted(entries: readonly Entry[]): void {
    if (this.caughtUp || entries.length === 0 || this.leaderId === '') return;
    if (this.received.entries === 0) this.received.fromIndex = entries[0]!.index;
    this.received.entries += entries.length;
    this.received.toIndex = entries[entries.length - 1]!.index;
    this.received.leaderId = this.leaderId;
    const now = performance.now();
    const reachedLeader = this.replayDone && this.received.toIndex >= this.leaderCommit;
    if (!reachedLeader && now - this.lastReportMs < progressIntervalMs) return;
    this.lastReportMs = now;
    this.log.info({ ...this.received, leaderCommit: this.leaderCommit }, 'received entries from the leader');
    this.received = { entries: 0, fromIndex: 0, toIndex: 0, leaderId: '' };
    if (reachedLeader) {
      this.caughtUp = true;
      this.log.info({ leaderCommit: this.leaderCommit, ms: Math.round(now - this.startedMs) }, 'caught up with the leader');
    }
  }
}
