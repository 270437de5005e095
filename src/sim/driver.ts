import type { Entry, Message, Ready, SoftState } from '../consensus/types';
import type { InvariantChecker } from './invariants';
import type { InflightReady, Member } from './member';
import type { ProposalLedger } from './proposals';
import { describeEntries } from './trace';
import { InvariantViolation } from './violation';

/**
 * The point at which a crash hits a member that has a Ready to handle:
 * - beforePersist: before anything, so the Ready and its messages are lost;
 * - beforeSync: after the leader's early messages and the log write, before
 *   its fsync, so the crash keeps or drops the write (a process crash leaves
 *   it in the page cache, a machine crash may lose it);
 * - afterPersist: after the fsync, with only the early messages sent;
 * - afterPersistUnsent: as afterPersist, but the early messages were still in
 *   the machine's send buffers and die with it, so nothing of the Ready left
 *   the member;
 * - afterSend: after sending every message;
 * - midApply: halfway through applying the committed entries.
 */
export type CrashPoint = 'beforePersist' | 'beforeSync' | 'afterPersist' | 'afterPersistUnsent' | 'afterSend' | 'midApply';

/** The crash points that random crashes and tests pick from. */
export const CRASH_POINTS: readonly CrashPoint[] = ['beforePersist', 'beforeSync', 'afterPersist', 'afterSend', 'midApply'];

/** The result of handling a Ready: finished, waiting for its fsync, or crashed. */
export type ReadyOutcome = 'done' | 'syncing' | 'crashed';

/** The cluster services that handling a Ready uses. */
export interface DriverContext {
  readonly checker: InvariantChecker;
  readonly ledger: ProposalLedger;
  send(from: Member, message: Message): void;
  noteSoftState(member: Member, softState: SoftState): void;
  /** Returns where a random crash hits this Ready, or null for none. */
  drawCrashPoint(member: Member, ready: Ready): CrashPoint | null;
  /** Returns whether this Ready waits for its fsync in a separate event. */
  drawSplit(member: Member): boolean;
  /** Schedules the event that finishes the member's inflight Ready. */
  scheduleSync(member: Member): void;
  /** Returns whether a crash keeps the unsynced write (true) or drops it. */
  drawKeepUnsynced(member: Member): boolean;
  log(text: string): void;
}

/**
 * Handles one Ready as replog's Member does. The start installs the snapshot,
 * sends the leader's early messages, applies the committed entries already on
 * disk and writes the log without fsync. The finish, after the fsync, sends
 * the other messages, applies the other committed entries and calls advance(). When context.drawSplit() returns true, a Ready that
 * waits for a write of entries, term or vote finishes in a later event that
 * context.scheduleSync() schedules. Until then the member steps messages,
 * ticks and proposals, but takes no other Ready. The member crashes at
 * `forcedCrashAt`, or else at the point context.drawCrashPoint() returns,
 * instead of finishing.
 */
export function handleReady(context: DriverContext, member: Member, forcedCrashAt: CrashPoint | null): ReadyOutcome {
  const core = member.core;
  if (core === null || !core.hasReady()) return 'done';
  if (member.inflight !== null) {
    throw new InvariantViolation('driver', `${member.id} took a Ready while the previous one waits for its fsync`);
  }
  const ready = core.ready();
  const crashAt = forcedCrashAt ?? context.drawCrashPoint(member, ready);
  if (crashAt === 'beforePersist') return crash(context, member, crashAt);
  context.noteSoftState(member, ready.softState);
  if (ready.snapshot !== null) installSnapshot(context, member, ready);
  const early = crashAt === 'afterPersistUnsent' ? [] : leaderMessagesBeforePersist(member, ready);
  for (const message of early) context.send(member, message);
  const appliedEarly = storedCommittedCount(ready);
  apply(context, member, ready.committedEntries.slice(0, appliedEarly));
  const waitsForSync = write(member, ready);
  if (crashAt === 'beforeSync') return crash(context, member, crashAt);
  const inflight: InflightReady = { ready, early: new Set(early), crashAt, appliedEarly };
  if (waitsForSync && forcedCrashAt === null && crashAt !== 'afterPersistUnsent' && context.drawSplit(member)) {
    member.inflight = inflight;
    logWrite(context, member, ready, 'wrote');
    context.scheduleSync(member);
    return 'syncing';
  }
  return finishReady(context, member, inflight, 'persisted');
}

/** Finishes the member's inflight Ready once its fsync completed. */
export function finishInflightReady(context: DriverContext, member: Member): ReadyOutcome {
  const inflight = member.inflight;
  if (inflight === null || member.core === null) return 'done';
  member.inflight = null;
  return finishReady(context, member, inflight, 'synced');
}

/**
 * Crashes a member now: in the fsync window of its inflight Ready when it has
 * one, else at `point` of handling its pending Ready, if any.
 */
export function crashMember(context: DriverContext, member: Member, point: CrashPoint): void {
  if (member.core === null) return;
  if (member.inflight !== null) {
    crash(context, member, 'beforeSync');
    return;
  }
  if (handleReady(context, member, point) !== 'crashed') crash(context, member, null);
}

/**
 * Makes the member's unsynced write durable and checks it, as an fsync of
 * the WAL does; `reason` names what fsync'd it, for the trace.
 */
export function syncWrite(context: DriverContext, member: Member, reason: string): void {
  const before = member.store.currentHardState();
  const write = member.store.sync();
  if (write === null) return;
  context.checker.checkPersisted(member, write.entries, before);
  context.log(`${member.id} ${reason}${describeWrite(write.entries, write.hardState)}`);
}

/** Syncs the Ready's write, logged as `syncLabel`, then sends the rest, applies and advances. */
function finishReady(context: DriverContext, member: Member, inflight: InflightReady, syncLabel: string): ReadyOutcome {
  const { ready, early, crashAt } = inflight;
  syncWrite(context, member, syncLabel);
  if (crashAt === 'afterPersist' || crashAt === 'afterPersistUnsent') return crash(context, member, crashAt);
  for (const message of ready.messages) {
    if (!early.has(message)) context.send(member, message);
  }
  if (crashAt === 'afterSend') return crash(context, member, crashAt);
  const appliedCount = crashAt === 'midApply' ? Math.floor(ready.committedEntries.length / 2) : ready.committedEntries.length;
  apply(context, member, ready.committedEntries.slice(inflight.appliedEarly, Math.max(inflight.appliedEarly, appliedCount)));
  if (crashAt === 'midApply') return crash(context, member, crashAt);
  const core = member.core;
  if (core === null) throw new InvariantViolation('driver', `${member.id} finished a Ready while down`);
  core.advance(ready);
  // replog's Member deletes its `rejoining` file here.
  if (member.rejoining && !core.votesHeld()) member.rejoining = false;
  const appliedIndex = core.status().appliedIndex;
  if (appliedIndex !== member.applied.length) {
    throw new InvariantViolation(
      'applied index',
      `${member.id} core reports applied ${appliedIndex}, state machine has ${member.applied.length}`,
    );
  }
  return 'done';
}

/**
 * Returns the leader's appends, heartbeats and snapshot messages, which
 * replog's Member sends before its own write when the Ready's term is the
 * stored one (Member.leaderMessagesBeforePersist()).
 */
function leaderMessagesBeforePersist(member: Member, ready: Ready): Message[] {
  if (ready.softState.role !== 'leader' || ready.softState.term !== member.store.currentHardState().term) return [];
  return ready.messages.filter((message) => message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshot');
}

/**
 * Writes the Ready's entries and hard state without fsync. Returns whether
 * replog's Member waits for an fsync: it does for entries and for a new term
 * or vote, but not for a change of the commit index alone.
 */
function write(member: Member, ready: Ready): boolean {
  if (ready.entries.length === 0 && ready.hardState === null) return false;
  const stored = member.store.currentHardState();
  member.store.write(ready.entries, ready.hardState);
  const hard = ready.hardState;
  return ready.entries.length > 0 || (hard !== null && (hard.term !== stored.term || hard.vote !== stored.vote));
}

function installSnapshot(context: DriverContext, member: Member, ready: Ready): void {
  const meta = ready.snapshot;
  if (meta === null) return;
  const data = member.takeStagedSnapshot(meta);
  if (data === undefined) {
    throw new InvariantViolation(
      'snapshot',
      `${member.id}: the core requested snapshot ${meta.index}/${meta.term}, but no snapshot message with its data arrived`,
    );
  }
  context.checker.checkSnapshotInstall(member, meta, data);
  member.applied = data.slice();
  member.store.installSnapshot(meta);
  context.log(`${member.id} installed snapshot ${meta.index}/${meta.term}`);
}

function logWrite(context: DriverContext, member: Member, ready: Ready, verb: string): void {
  context.log(`${member.id} ${verb}${describeWrite(ready.entries, ready.hardState)}`);
}

function describeWrite(entries: Ready['entries'], hard: Ready['hardState']): string {
  const hardText = hard === null ? '' : ` hs=t${hard.term} vote=${String(hard.vote)} commit=${hard.commit}`;
  const entriesText = entries.length === 0 ? '' : ` ${describeEntries(entries)}`;
  return `${hardText}${entriesText}`;
}

/**
 * Returns how many of the Ready's committed entries come before its new
 * entries. Those are on the member's disk, so replog's Member applies them
 * before the write (Member.applyStored()).
 */
function storedCommittedCount(ready: Ready): number {
  const firstNew = ready.entries[0]?.index ?? Infinity;
  const count = ready.committedEntries.findIndex((entry) => entry.index >= firstNew);
  return count === -1 ? ready.committedEntries.length : count;
}

/**
 * Applies committed entries that earlier Readies stored while the member's
 * Ready waits for its fsync, as replog's Member does
 * (Member.applyDuringSync()). The checker verifies that they follow the
 * entries already applied and sit in the member's synced log.
 */
export function applyDuringSync(context: DriverContext, member: Member): void {
  const core = member.core;
  if (member.inflight === null || core === null) return;
  const entries = core.takeStoredCommitted();
  const last = entries[entries.length - 1];
  if (last === undefined) return;
  apply(context, member, entries, 'applied during fsync');
  core.appliedTo(last.index);
}

function apply(context: DriverContext, member: Member, entries: readonly Entry[], verb = 'applied'): void {
  for (const entry of entries) {
    context.checker.checkApply(member, entry);
    member.applied.push(entry);
    context.ledger.noteApplied(member.id, entry);
  }
  if (entries.length > 0) context.log(`${member.id} ${verb} ${describeEntries(entries)}`);
}

/**
 * Crashes the member. A write not yet fsync'd survives or not by
 * context.drawKeepUnsynced(). `point` is null for a crash between two Readies.
 */
function crash(context: DriverContext, member: Member, point: CrashPoint | null): 'crashed' {
  let unsynced = '';
  if (member.store.hasUnsynced) {
    const keep = context.drawKeepUnsynced(member);
    if (keep) syncWrite(context, member, 'kept unsynced write');
    else member.store.dropUnsynced();
    unsynced = keep ? ', unsynced write kept' : ', unsynced write dropped';
  }
  member.crash();
  context.log(point === null ? `${member.id} crashed${unsynced}` : `${member.id} crashed (${point})${unsynced}`);
  return 'crashed';
}
