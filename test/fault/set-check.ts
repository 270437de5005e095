// The checker of the set test: given the client history and what every member
// stores after the faults are healed, lists each violation of
//   - every acknowledged valueset is on every member, at its acknowledged index;
//   - a valueset whose append certainly failed is stored nowhere;
//   - no member stores a valueset twice, or one that no client appended;
//   - all members store the same sequence, and its digest is the /status digest.
// Appends with an unknown outcome may be stored or not.
import type { MemberStatus } from '../../src/node/member';
import { digestStep, initialDigest } from '../../src/storage/digest';
import type { MessageTuple } from './probe-agent';
import type { HistoryEvent } from './set-workload';

/** The outcome of each valueset, as the history records it. */
export interface SetOutcomes {
  /** Valuesets some append of which returned ok, with the index it reported. */
  readonly acknowledged: Map<string, number>;
  /** Valuesets whose every append certainly failed. */
  readonly failed: Set<string>;
  readonly invoked: Set<string>;
  readonly unknownCount: number;
  /** Valuesets acknowledged at two different indexes. */
  readonly conflicts: string[];
}

/** What one member stores, read after the cluster settled. */
export interface MemberContents {
  readonly id: string;
  readonly status: MemberStatus;
  readonly messages: readonly MessageTuple[];
}

/** Problems listed in full; the rest are counted. */
const problemsListedMax = 20;

/** Folds the history lines into the outcome of each valueset. */
export function summarizeHistory(events: readonly HistoryEvent[]): SetOutcomes {
  const acknowledged = new Map<string, number>();
  const failedOnce = new Set<string>();
  const invoked = new Set<string>();
  const conflicts: string[] = [];
  let unknownCount = 0;
  for (const event of events) {
    if (event.type === 'invoke') invoked.add(event.value);
    if (event.type === 'fail') failedOnce.add(event.value);
    if (event.type === 'info') unknownCount++;
    if (event.type !== 'ok' || event.index === undefined) continue;
    const earlier = acknowledged.get(event.value);
    if (earlier !== undefined && earlier !== event.index) {
      conflicts.push(`${event.value} was acknowledged at index ${earlier} and at index ${event.index}`);
    }
    acknowledged.set(event.value, earlier ?? event.index);
  }
  const failed = new Set([...failedOnce].filter((value) => !acknowledged.has(value)));
  return { acknowledged, failed, invoked, unknownCount, conflicts };
}

/** Parses a history file's text (JSON lines). */
export function parseHistory(text: string): HistoryEvent[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as HistoryEvent);
}

/** Checks one member's own consistency: ascending indexes, unique valuesets, digest and count. */
function checkMember(member: MemberContents, invoked: ReadonlySet<string>, problems: string[]): Map<string, number> {
  const stored = new Map<string, number>();
  let digest = initialDigest();
  let previousIndex = 0;
  for (const [index, valueset] of member.messages) {
    if (index <= previousIndex) problems.push(`${member.id}: index ${index} follows index ${previousIndex}`);
    previousIndex = index;
    const earlier = stored.get(valueset);
    if (earlier !== undefined) problems.push(`${member.id}: ${valueset} is stored twice, at ${earlier} and ${index}`);
    if (!invoked.has(valueset)) problems.push(`${member.id}: ${valueset} at ${index} was never appended by a client`);
    stored.set(valueset, index);
    digest = digestStep(digest, index, valueset);
  }
  if (digest.toString('hex') !== member.status.digest) {
    problems.push(`${member.id}: the digest of its Read stream differs from its /status digest`);
  }
  if (member.messages.length !== member.status.messageCount) {
    problems.push(`${member.id}: Read returned ${member.messages.length} messages, /status counts ${member.status.messageCount}`);
  }
  return stored;
}

/** Compares `member` with `reference` message by message; reports the first difference. */
function compareMembers(reference: MemberContents, member: MemberContents, problems: string[]): void {
  if (member.status.appliedIndex !== reference.status.appliedIndex) {
    problems.push(`${member.id} applied ${member.status.appliedIndex}, ${reference.id} applied ${reference.status.appliedIndex}`);
  }
  const length = Math.max(member.messages.length, reference.messages.length);
  for (let i = 0; i < length; i++) {
    const a = reference.messages[i];
    const b = member.messages[i];
    if (a && b && a[0] === b[0] && a[1] === b[1] && a[2] === b[2]) continue;
    problems.push(`${member.id} and ${reference.id} differ at position ${i}: ${JSON.stringify(b)} vs ${JSON.stringify(a)}`);
    return;
  }
}

/** Returns every violation found; an empty list means the run passed. */
export function checkSet(outcomes: SetOutcomes, members: readonly MemberContents[]): string[] {
  const problems: string[] = [...outcomes.conflicts];
  const reference = members[0];
  if (!reference) return ['no member was read'];
  for (const member of members) {
    const stored = checkMember(member, outcomes.invoked, problems);
    if (member !== reference) compareMembers(reference, member, problems);
    for (const [value, index] of outcomes.acknowledged) {
      const at = stored.get(value);
      if (at !== index) problems.push(`${member.id}: acknowledged ${value} at index ${index} is ${at === undefined ? 'missing' : `at index ${at}`}`);
    }
    for (const value of outcomes.failed) {
      if (stored.has(value)) problems.push(`${member.id}: ${value} is stored though its append failed`);
    }
  }
  return problems;
}

/** Formats problems for an assertion message: the first ones in full, then a count. */
export function formatProblems(problems: readonly string[]): string {
  const listed = problems.slice(0, problemsListedMax).join('\n  ');
  const more = problems.length > problemsListedMax ? `\n  ... and ${problems.length - problemsListedMax} more` : '';
  return `${problems.length} problems:\n  ${listed}${more}`;
}
