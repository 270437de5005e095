import type { Entry, HardState, Message, NodeId, SnapshotMeta } from '../consensus/types';
import type { Member } from './member';
import { InvariantViolation } from './violation';

/** One entry known to be committed, and the term in which that was first seen. */
interface CommittedRecord {
  readonly term: number;
  readonly key: string;
  /** A member's term when it first stored a commit index covering the entry. */
  readonly observedTerm: number;
}

/** The checker's record of one incarnation of a member, taken from status(). */
interface VolatileView {
  incarnation: number;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  /** The term in which this incarnation was last seen as leader, or 0. */
  leaderTerm: number;
}

/** Returns a string that two entries share only when term, type and data match. */
export function entryKey(entry: Entry): string {
  return `${entry.term}|${entry.type}|${Buffer.from(entry.data).toString('latin1')}`;
}

/**
 * Checks the safety properties of Raft over a whole simulated cluster: election
 * safety, log matching, leader completeness, state machine safety, committed
 * entries never lost or reordered, and commit and applied indexes that never
 * go back. "Stored" and "on disk" mean fsync'd: the store's reads leave out a
 * write that is not yet fsync'd. Every method throws an InvariantViolation on
 * the first break.
 */
export class InvariantChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Committed entries by index: position i - 1 is index i. */
  private readonly committed: CommittedRecord[] = [];
  /** `index/term` of every entry any member persisted, with the term before it. */
  private readonly persistedEntries = new Map<string, { readonly previousTerm: number; readonly key: string }>();
  private readonly volatileViews = new Map<NodeId, VolatileView>();
  /** Durable commit index of each member already compared with `committed`. */
  private readonly checkedCommits = new Map<NodeId, number>();
  /** Highest index that a leader's commit index covered, checked by checkLeaderCommitStored(). */
  private leaderCommitChecked = 0;

  constructor(private readonly members: readonly Member[]) {}

  /** Returns the number of entries known to be committed. */
  committedCount(): number {
    return this.committed.length;
  }

  committedKeyAt(index: number): string | undefined {
    return this.committed[index - 1]?.key;
  }

  majority(): number {
    return Math.floor(this.members.length / 2) + 1;
  }

  /** Checks every member that is up, through status() and termAt(). */
  checkStep(): void {
    for (const member of this.members) {
      if (member.core !== null) this.checkMember(member);
    }
  }

  /** Checks a write the simulator just made durable; `before` is the hard state before it. */
  checkPersisted(member: Member, entries: readonly Entry[], before: HardState): void {
    if (entries.length > 0) {
      this.checkNoCommittedTruncation(member, entries, before.commit);
      this.checkLogMatching(member, entries);
    }
    this.recordDurableCommit(member);
  }

  /**
   * Checks that a message depends only on state the member already stored: a
   * granted vote on the stored vote (or a later stored term), a successful
   * append response on stored entries, any message on a stored term. Pre-vote
   * messages carry a term that no member has stored yet, so the term rule
   * skips them.
   */
  checkSent(member: Member, message: Message): void {
    const stored = member.store.currentHardState();
    const preVote = (message.type === 'vote' || message.type === 'voteResponse') && message.preVote;
    if (!preVote && message.term > stored.term) {
      this.fail(
        'durable before send',
        `${member.id} sent ${message.type} of term ${message.term} with term ${stored.term} stored`,
      );
    }
    // A later stored term also protects the vote, because the member never
    // votes in an earlier term again.
    if (message.type === 'voteResponse' && message.granted && !message.preVote) {
      if (stored.term === message.term && stored.vote !== message.to) {
        this.fail(
          'durable before send',
          `${member.id} granted its vote to ${message.to} in term ${message.term} but stored vote ${String(stored.vote)} in term ${stored.term}`,
        );
      }
    }
    if (message.type === 'appendResponse' && message.success) {
      const storedIndex = Math.max(member.store.lastIndex(), member.store.currentSnapshot().index);
      if (message.matchIndex > storedIndex) {
        this.fail(
          'durable before send',
          `${member.id} acknowledged entries up to ${message.matchIndex} but stored up to ${storedIndex}`,
        );
      }
    }
  }

  /** Checks one entry before it joins the member's state machine. */
  checkApply(member: Member, entry: Entry): void {
    const expected = member.applied.length + 1;
    if (entry.index !== expected) {
      this.fail(
        'state machine safety',
        `${member.id} applied index ${entry.index}, expected ${expected}`,
      );
    }
    // A member applies only what its own fsync'd log holds, so a restart
    // never finds the state machine ahead of the log.
    const stored = member.store.entryAt(entry.index);
    if (stored === undefined || stored.term !== entry.term) {
      this.fail(
        'state machine safety',
        `${member.id} applied ${entry.index}/${entry.term}, which its synced log does not hold (${stored === undefined ? 'absent' : `term ${stored.term}`})`,
      );
    }
    this.matchCommitted(member, entry, member.store.currentHardState().term);
  }

  /** Checks a snapshot's data before it replaces the member's state machine. */
  checkSnapshotInstall(member: Member, meta: SnapshotMeta, data: readonly Entry[]): void {
    if (data.length !== meta.index || data[data.length - 1]?.term !== (meta.index === 0 ? undefined : meta.term)) {
      this.fail(
        'snapshot',
        `${member.id} got data of ${data.length} entries for snapshot ${meta.index}/${meta.term}`,
      );
    }
    if (meta.index < member.applied.length) {
      this.fail(
        'applied index monotonic',
        `${member.id} installed snapshot ${meta.index} below applied ${member.applied.length}`,
      );
    }
    for (let index = member.applied.length + 1; index <= meta.index; index += 1) {
      this.matchCommitted(member, data[index - 1] as Entry, member.store.currentHardState().term);
    }
  }

  /** Checks a restarted member's first status against what survived on its disk. */
  checkRestart(member: Member): void {
    this.volatileViews.delete(member.id);
    const status = member.core?.status();
    if (status === undefined) return;
    const stored = member.store.currentHardState();
    if (status.term !== stored.term || status.commitIndex < stored.commit) {
      this.fail(
        'restart',
        `${member.id} restarted at term ${status.term} commit ${status.commitIndex}, stored term ${stored.term} commit ${stored.commit}`,
      );
    }
    if (status.appliedIndex !== member.applied.length) {
      this.fail(
        'restart',
        `${member.id} restarted with applied ${status.appliedIndex}, its state machine has ${member.applied.length}`,
      );
    }
    this.checkMember(member);
  }

  private checkMember(member: Member): void {
    const core = member.core;
    if (core === null) return;
    const status = core.status();
    const view = this.viewOf(member, status.term);
    if (status.term < view.term) this.fail('term monotonic', `${member.id} term ${status.term} after ${view.term}`);
    if (status.commitIndex < view.commitIndex) {
      this.fail(
        'commit index monotonic',
        `${member.id} commit ${status.commitIndex} after ${view.commitIndex}`,
      );
    }
    if (status.appliedIndex < view.appliedIndex) {
      this.fail(
        'applied index monotonic',
        `${member.id} applied ${status.appliedIndex} after ${view.appliedIndex}`,
      );
    }
    if (status.appliedIndex > status.commitIndex) {
      this.fail(
        'applied index',
        `${member.id} applied ${status.appliedIndex} above commit ${status.commitIndex}`,
      );
    }
    this.checkCommitTerms(member, view.commitIndex, status.commitIndex, status.snapshotIndex);
    if (status.role === 'leader') {
      this.checkLeader(member, status.term, view);
      this.checkLeaderCommitStored(member, status.term, Math.max(view.commitIndex, status.snapshotIndex), status.commitIndex);
    }
    view.term = status.term;
    view.commitIndex = status.commitIndex;
    view.appliedIndex = status.appliedIndex;
  }

  private viewOf(member: Member, term: number): VolatileView {
    const existing = this.volatileViews.get(member.id);
    if (existing !== undefined && existing.incarnation === member.incarnation) return existing;
    const view: VolatileView = { incarnation: member.incarnation, term, commitIndex: 0, appliedIndex: 0, leaderTerm: 0 };
    this.volatileViews.set(member.id, view);
    return view;
  }

  /** Election safety, then leader completeness when the member just took office. */
  private checkLeader(member: Member, term: number, view: VolatileView): void {
    const holder = this.leaderOfTerm.get(term);
    if (holder !== undefined && holder !== member.id) {
      this.fail('election safety', `${holder} and ${member.id} are both leaders of term ${term}`);
    }
    this.leaderOfTerm.set(term, member.id);
    if (view.leaderTerm === term) return;
    view.leaderTerm = term;
    for (let index = 1; index <= this.committed.length; index += 1) {
      const record = this.committed[index - 1] as CommittedRecord;
      if (record.observedTerm <= term) this.checkLeaderHas(member, term, index, record);
    }
  }

  private checkLeaderHas(leader: Member, leaderTerm: number, index: number, record: CommittedRecord): void {
    const core = leader.core;
    if (core === null) return;
    const term = core.termAt(index);
    if (term === undefined && index <= core.status().snapshotIndex) return;
    if (term !== record.term) {
      this.fail(
        'leader completeness',
        `leader ${leader.id} of term ${leaderTerm} has term ${String(term)} at committed index ${index} (term ${record.term}, seen committed in term ${record.observedTerm})`,
      );
    }
  }

  /** Checks that entries newly covered by a member's in-memory commit are the committed ones. */
  private checkCommitTerms(member: Member, from: number, to: number, snapshotIndex: number): void {
    const core = member.core;
    if (core === null) return;
    const last = Math.min(to, this.committed.length);
    for (let index = Math.max(from + 1, snapshotIndex + 1); index <= last; index += 1) {
      const expected = (this.committed[index - 1] as CommittedRecord).term;
      const term = core.termAt(index);
      if (term !== expected) {
        this.fail(
          'committed entries kept',
          `${member.id} commits term ${String(term)} at ${index}, committed term is ${expected}`,
        );
      }
    }
  }

  /**
   * Checks that each entry a leader's commit index newly covers is already on
   * the disk of a majority. A leader that counted its own entries before their
   * fsync, or a follower that acknowledged entries before theirs, breaks this
   * even when no crash follows.
   */
  private checkLeaderCommitStored(leader: Member, leaderTerm: number, from: number, to: number): void {
    const core = leader.core;
    if (core === null) return;
    for (let index = Math.max(from, this.leaderCommitChecked) + 1; index <= to; index += 1) {
      const term = core.termAt(index);
      if (term === undefined) continue;
      const holders = this.countDisksHolding(index, term);
      if (holders.disks + holders.rejoining < this.majority()) {
        this.fail(
          'durability',
          `leader ${leader.id} of term ${leaderTerm} committed ${index}/${term}, which is on ${describeHolders(holders)}, a majority is ${this.majority()}`,
        );
      }
    }
    this.leaderCommitChecked = Math.max(this.leaderCommitChecked, to);
  }

  private checkNoCommittedTruncation(member: Member, entries: readonly Entry[], commit: number): void {
    for (const entry of entries) {
      if (entry.index > commit) return;
      const stored = member.store.entryAt(entry.index);
      const committedKey = this.committed[entry.index - 1]?.key;
      if (committedKey !== undefined && entryKey(entry) !== committedKey) {
        this.fail(
          'committed entries kept',
          `${member.id} overwrote committed entry ${entry.index} (stored commit ${commit}, had term ${String(stored?.term)})`,
        );
      }
    }
  }

  /** Log matching: an index and term fix the entry and the term of the entry before it. */
  private checkLogMatching(member: Member, entries: readonly Entry[]): void {
    for (const entry of entries) {
      const previousTerm = member.store.termAt(entry.index - 1);
      if (previousTerm === undefined) {
        this.fail(
          'log matching',
          `${member.id} stored ${entry.index} but has no term at ${entry.index - 1}`,
        );
      }
      const id = `${entry.index}/${entry.term}`;
      const key = entryKey(entry);
      const seen = this.persistedEntries.get(id);
      if (seen === undefined) {
        this.persistedEntries.set(id, { previousTerm, key });
      } else if (seen.key !== key || seen.previousTerm !== previousTerm) {
        this.fail(
          'log matching',
          `${member.id} stored entry ${id} after term ${previousTerm}, another member after term ${seen.previousTerm} or with other data`,
        );
      }
    }
  }

  /** Forgets what the member stored, after it lost its disk, so that its new writes are checked from the start. */
  forgetDurable(member: Member): void {
    this.checkedCommits.delete(member.id);
    this.volatileViews.delete(member.id);
  }

  /** Records entries covered by the member's stored commit index, or compares them. */
  private recordDurableCommit(member: Member): void {
    const hardState = member.store.currentHardState();
    const checked = this.checkedCommits.get(member.id) ?? 0;
    for (let index = checked + 1; index <= hardState.commit; index += 1) {
      const entry = member.entryAt(index);
      if (entry === undefined) {
        this.fail(
          'commit',
          `${member.id} stored commit ${hardState.commit} but has no entry ${index} on disk`,
        );
      }
      this.matchCommitted(member, entry, hardState.term);
    }
    this.checkedCommits.set(member.id, Math.max(checked, hardState.commit));
  }

  /** Compares an entry with the committed one at its index, or records it as committed. */
  private matchCommitted(member: Member, entry: Entry, observedTerm: number): void {
    const known = this.committed[entry.index - 1];
    if (known !== undefined) {
      if (known.key !== entryKey(entry)) {
        this.fail(
          'state machine safety',
          `${member.id} has term ${entry.term} at committed index ${entry.index}, committed term is ${known.term}`,
        );
      }
      return;
    }
    if (entry.index !== this.committed.length + 1) {
      this.fail(
        'commit',
        `${member.id} committed ${entry.index} before ${this.committed.length + 1}`,
      );
    }
    const record: CommittedRecord = { term: entry.term, key: entryKey(entry), observedTerm };
    this.committed.push(record);
    this.checkStoredOnMajority(entry);
    for (const other of this.members) {
      const status = other.core?.status();
      if (status?.role === 'leader' && status.term >= observedTerm) this.checkLeaderHas(other, status.term, entry.index, record);
    }
  }

  /** Checks that a committed entry is on the disk of a majority, in the log or below the snapshot. */
  private checkStoredOnMajority(entry: Entry): void {
    const holders = this.countDisksHolding(entry.index, entry.term);
    if (holders.disks + holders.rejoining < this.majority()) {
      this.fail(
        'durability',
        `committed entry ${entry.index}/${entry.term} is on ${describeHolders(holders)}, a majority is ${this.majority()}`,
      );
    }
  }

  /**
   * Counts the members whose disk has the entry, in the log or below the
   * snapshot, and the members without it that rejoin after losing their disk.
   * Those may have acknowledged the entry before, and vote for no one until
   * caught up, so a majority of the members that vote still includes a disk
   * with the entry. They count towards the majority.
   */
  private countDisksHolding(index: number, term: number): DiskHolders {
    let disks = 0;
    let rejoining = 0;
    for (const member of this.members) {
      if (this.holds(member, index, term)) disks += 1;
      else if (member.rejoining) rejoining += 1;
    }
    return { disks, rejoining };
  }

  /** Returns whether the member's disk has the entry, in its log or a snapshot. */
  private holds(member: Member, index: number, term: number): boolean {
    const inLog = member.store.termAt(index) === term && index > member.store.currentLogStart().index;
    return inLog || member.store.currentSnapshot().index >= index;
  }

  private fail(invariant: string, detail: string): never {
    throw new InvariantViolation(invariant, detail);
  }
}

/** Members with an entry on disk, and members without it that rejoin after losing their disk. */
interface DiskHolders {
  readonly disks: number;
  readonly rejoining: number;
}

function describeHolders(holders: DiskHolders): string {
  const rejoining = holders.rejoining === 0 ? '' : ` (and ${holders.rejoining} members rejoining after losing theirs)`;
  return `${holders.disks} disks${rejoining}`;
}
