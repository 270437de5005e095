import type { Message, Ready, SoftState } from '../consensus/types';
import type { InvariantChecker } from './invariants';
import type { Member } from './member';
import type { ProposalLedger } from './proposals';
import { describeEntries } from './trace';
import { InvariantViolation } from './violation';

/**
 * The point at which a crash hits a member that has a Ready to handle. Before
 * persisting it, the Ready and its messages are lost. The other points are
 * after persisting, after sending the messages, and halfway through applying
 * the committed entries.
 */
export type CrashPoint = 'beforePersist' | 'afterPersist' | 'afterSend' | 'midApply';

export const CRASH_POINTS: readonly CrashPoint[] = ['beforePersist', 'afterPersist', 'afterSend', 'midApply'];

/** The cluster services that handling a Ready uses. */
export interface DriverContext {
  readonly checker: InvariantChecker;
  readonly ledger: ProposalLedger;
  send(from: Member, message: Message): void;
  noteSoftState(member: Member, softState: SoftState): void;
  /** Returns where a random crash hits this Ready, or null for none. */
  drawCrashPoint(member: Member, ready: Ready): CrashPoint | null;
  log(text: string): void;
}

/**
 * Performs one Ready in the order the core requires: install the snapshot,
 * persist entries and hard state, send messages, apply committed entries,
 * advance. The member crashes at `forcedCrashAt`, or else at the point
 * context.drawCrashPoint() returns, instead of finishing. Returns false when
 * it crashed.
 */
export function handleReady(context: DriverContext, member: Member, forcedCrashAt: CrashPoint | null): boolean {
  const core = member.core;
  if (core === null || !core.hasReady()) return true;
  const ready = core.ready();
  const crashAt = forcedCrashAt ?? context.drawCrashPoint(member, ready);
  if (crashAt === 'beforePersist') return crash(context, member, crashAt);
  context.noteSoftState(member, ready.softState);
  if (ready.snapshot !== null) installSnapshot(context, member, ready);
  persist(context, member, ready);
  if (crashAt === 'afterPersist') return crash(context, member, crashAt);
  for (const message of ready.messages) context.send(member, message);
  if (crashAt === 'afterSend') return crash(context, member, crashAt);
  const appliedCount = crashAt === 'midApply' ? Math.floor(ready.committedEntries.length / 2) : ready.committedEntries.length;
  apply(context, member, ready, appliedCount);
  if (crashAt === 'midApply') return crash(context, member, crashAt);
  core.advance(ready);
  const appliedIndex = core.status().appliedIndex;
  if (appliedIndex !== member.applied.length) {
    throw new InvariantViolation(
      'applied index',
      `${member.id} core reports applied ${appliedIndex}, state machine has ${member.applied.length}`,
    );
  }
  return true;
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

function persist(context: DriverContext, member: Member, ready: Ready): void {
  if (ready.entries.length === 0 && ready.hardState === null) return;
  const before = member.store.currentHardState();
  member.store.persist(ready.entries, ready.hardState);
  context.checker.checkPersisted(member, ready.entries, before);
  const hard = ready.hardState;
  const hardText = hard === null ? '' : ` hs=t${hard.term} vote=${String(hard.vote)} commit=${hard.commit}`;
  const entriesText = ready.entries.length === 0 ? '' : ` ${describeEntries(ready.entries)}`;
  context.log(`${member.id} persisted${hardText}${entriesText}`);
}

function apply(context: DriverContext, member: Member, ready: Ready, count: number): void {
  const entries = ready.committedEntries.slice(0, count);
  for (const entry of entries) {
    context.checker.checkApply(member, entry);
    member.applied.push(entry);
    context.ledger.noteApplied(member.id, entry);
  }
  if (entries.length > 0) context.log(`${member.id} applied ${describeEntries(entries)}`);
}

function crash(context: DriverContext, member: Member, point: CrashPoint): false {
  member.crash();
  context.log(`${member.id} crashed (${point})`);
  return false;
}
