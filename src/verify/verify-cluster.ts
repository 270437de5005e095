// `replog verify`'s logic: read every member's messages through Read, straight
// from that member, recompute the digest of the contract, check it against the
// member's own /status, and compare the members with one another.
//
// Memory: the members are read in lockstep by index, so at any time only one
// message per member is held. The duplicate check keeps a 64-bit fingerprint
// per distinct (valueset, index) in typed arrays (see fingerprint-table.ts).
//
// Soundness when the cluster is not quiescent: /status is fetched just before
// the read. Entries are applied in index order and stored messages never
// change, so a Read started after that fetch returns every message at or below
// the applied index it reported, whatever is applied meanwhile. Each member's
// digest and count are therefore checked over the messages at or below its own
// "before" applied index, and the members are compared over indexes at or
// below the smallest of these (the common applied prefix), which every member
// had applied before its read began.
import { setTimeout as sleep } from 'node:timers/promises';
import { connectIngest, type IngestClient } from '../client/ingest-client';
import type { StoredMessage } from '../client/types';
import { fetchMemberStatus, type StatusFetchResult } from '../cli/status-fetch';
import type { MemberStatus } from '../cli/status-table';
import { digestStep, initialDigest } from '../storage/digest';
import { fingerprint, FingerprintTable, fingerprintMembersMax } from './fingerprint-table';

/** One member to verify: its gRPC (Ingest) and HTTP (/status) addresses. */
export interface VerifyTarget {
  /** Name to show; the id from /status (or the gRPC address) when null. */
  readonly id: string | null;
  readonly grpc: string;
  readonly http: string;
}

/** Sees every message read, e.g. to check acknowledged appends in the same pass. */
export interface MessageObserver {
  /** Called before each attempt reads; forget what earlier attempts reported. */
  begin(memberCount: number): void;
  message(member: number, message: StoredMessage): void;
}

export interface VerifyOptions {
  /** Extra attempts when the cluster was not quiescent (applied indexes moved or differ). */
  readonly retries: number;
  readonly retryDelayMs: number;
  /** Succeed on the common applied prefix when the cluster never became quiescent. */
  readonly allowBusy: boolean;
  readonly statusTimeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly observer?: MessageObserver;
  /** Duplicates listed per member (all are counted). */
  readonly duplicatesListed?: number;
}

export const verifyDefaults = { retries: 3, retryDelayMs: 1_000, statusTimeoutMs: 3_000, duplicatesListed: 10 } as const;

export interface MessageRef {
  readonly index: number;
  readonly receivedAtMs: number;
}

export interface DuplicateValueset {
  readonly valueset: string;
  readonly firstIndex: number;
  readonly index: number;
}

export interface MemberVerification {
  readonly label: string;
  readonly grpc: string;
  readonly http: string;
  /** /status just before and just after the read; null when it failed. */
  readonly before: MemberStatus | null;
  readonly after: MemberStatus | null;
  /** Why the member could not be (fully) checked, or null. */
  readonly error: string | null;
  readonly messagesRead: number;
  /** Messages read at or below `before.appliedIndex`, and their digest (hex). */
  readonly checkedCount: number;
  readonly checkedDigest: string;
  /** Null when not checked (no status, or the read failed). */
  readonly countMatches: boolean | null;
  readonly digestMatches: boolean | null;
  /** The applied index changed during the read (or /status failed after it). */
  readonly moved: boolean;
  readonly first: MessageRef | null;
  readonly last: MessageRef | null;
  readonly duplicateCount: number;
  readonly duplicates: readonly DuplicateValueset[];
}

export interface Difference {
  readonly index: number;
  /** Every compared member's valueset at `index`; null when it stores none there. */
  readonly values: readonly { readonly member: string; readonly valueset: string | null }[];
}

export interface VerifyResult {
  /** Every member answered, matches its own /status and the others, no duplicates, quiescent (or allowed busy). */
  readonly ok: boolean;
  readonly quiescent: boolean;
  readonly attempts: number;
  /** Indexes 1..comparedUpTo were compared across members. */
  readonly comparedUpTo: number;
  readonly members: readonly MemberVerification[];
  readonly firstDifference: Difference | null;
  readonly differingIndexes: number;
  /** Everything that is wrong, one line each. */
  readonly problems: readonly string[];
  readonly verdict: string;
}

type StatusProbe = StatusFetchResult;

/**
 * Verifies the members. Retries the whole check (after `retryDelayMs`) up to
 * `retries` times while the cluster is not quiescent; after the last attempt
 * the result covers the common applied prefix.
 */
export async function verifyCluster(targets: readonly VerifyTarget[], options: VerifyOptions): Promise<VerifyResult> {
  if (targets.length === 0) throw new RangeError('verifyCluster: no members');
  if (targets.length > fingerprintMembersMax) throw new RangeError(`verifyCluster: at most ${fingerprintMembersMax} members`);
  const statusTimeoutMs = options.statusTimeoutMs ?? verifyDefaults.statusTimeoutMs;
  const fetchAll = (): Promise<StatusProbe[]> => Promise.all(targets.map((t) => fetchMemberStatus(t.http, statusTimeoutMs)));
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const lastAttempt = attempt > options.retries;
    const before = await fetchAll();
    const answered = before.flatMap((p) => ('status' in p ? [p.status] : []));
    const appliedDiffer = new Set(answered.map((s) => s.appliedIndex)).size > 1;
    if (!lastAttempt && answered.length === targets.length && appliedDiffer) {
      // Members still catching up: waiting is cheaper than reading everything.
      await sleep(options.retryDelayMs, undefined, { signal: options.signal });
      continue;
    }
    const scan = await scanMembers(targets, before, options);
    const after = await fetchAll();
    const result = summarize(targets, before, after, scan, attempt, options.allowBusy);
    if (result.quiescent || lastAttempt) return result;
    await sleep(options.retryDelayMs, undefined, { signal: options.signal });
  }
}

/** What one lockstep pass found, before it is judged. */
interface ScanOutcome {
  readonly members: MemberScan[];
  readonly comparedUpTo: number;
  readonly firstDifference: Difference | null;
  readonly differingIndexes: number;
}

/** Running state of one member during a pass. */
class MemberScan {
  digest = initialDigest();
  checkedCount = 0;
  messagesRead = 0;
  first: MessageRef | null = null;
  last: MessageRef | null = null;
  lastIndex = 0;
  error: string | null = null;
  duplicateCount = 0;
  readonly duplicates: DuplicateValueset[] = [];

  constructor(
    readonly label: string,
    /** Applied index of /status before the read; null when the member is not read. */
    readonly bound: number | null,
  ) {}

  take(message: StoredMessage): void {
    this.messagesRead += 1;
    if (this.bound !== null && message.index <= this.bound) {
      this.digest = digestStep(this.digest, message.index, message.valueset);
      this.checkedCount += 1;
    }
    const ref = { index: message.index, receivedAtMs: message.receivedAtMs };
    this.first ??= ref;
    this.last = ref;
    this.lastIndex = message.index;
  }
}

async function scanMembers(
  targets: readonly VerifyTarget[],
  before: readonly StatusProbe[],
  options: VerifyOptions,
): Promise<ScanOutcome> {
  const listed = options.duplicatesListed ?? verifyDefaults.duplicatesListed;
  const scans = targets.map((t, k) => {
    const probe = before[k]!;
    const status = 'status' in probe ? probe.status : null;
    const scan = new MemberScan(t.id ?? status?.id ?? t.grpc, status?.appliedIndex ?? null);
    if ('error' in probe) scan.error = `/status before the read: ${probe.error}`;
    return scan;
  });
  const readable = scans.flatMap((s, k) => (s.bound !== null ? [k] : []));
  const comparedUpTo = readable.length > 0 ? Math.min(...readable.map((k) => scans[k]!.bound!)) : 0;
  const clients = new Map<number, IngestClient>(readable.map((k) => [k, connectIngest(targets[k]!.grpc)]));
  const iterators = new Map(readable.map((k) => [k, clients.get(k)!.read(0, 0, false)]));
  const heads = new Map<number, StoredMessage | null>();
  const table = new FingerprintTable();
  let firstDifference: Difference | null = null;
  let differingIndexes = 0;
  options.observer?.begin(targets.length);

  const pull = async (k: number): Promise<void> => {
    const scan = scans[k]!;
    try {
      const next = await iterators.get(k)!.next();
      const message = next.done ? null : next.value;
      if (message && message.index <= scan.lastIndex) {
        throw new Error(`Read returned index ${message.index} after index ${scan.lastIndex}`);
      }
      heads.set(k, message);
    } catch (error) {
      scan.error = `Read failed after ${scan.messagesRead} messages: ${error instanceof Error ? error.message : String(error)}`;
      heads.set(k, null);
    }
  };

  try {
    await Promise.all(readable.map(pull));
    for (let step = 0; ; step++) {
      if (step % 1024 === 0) options.signal?.throwIfAborted();
      let index = Infinity;
      for (const head of heads.values()) if (head && head.index < index) index = head.index;
      if (index === Infinity) break;
      const holders = readable.filter((k) => heads.get(k)?.index === index);
      const groups = new Map<string, number>();
      for (const k of holders) {
        const message = heads.get(k)!;
        scans[k]!.take(message);
        options.observer?.message(k, message);
        groups.set(message.valueset, (groups.get(message.valueset) ?? 0) | (1 << k));
      }
      if (index <= comparedUpTo) {
        // Every member whose read has not failed must hold every index up to the prefix.
        const compared = readable.filter((k) => scans[k]!.error === null);
        if (groups.size > 1 || holders.length < compared.length) {
          differingIndexes += 1;
          firstDifference ??= {
            index,
            values: compared.map((k) => ({
              member: scans[k]!.label,
              valueset: holders.includes(k) ? heads.get(k)!.valueset : null,
            })),
          };
        }
      }
      for (const [valueset, memberMask] of groups) {
        const [hi, lo] = fingerprint(valueset);
        const earlier = table.visit(hi, lo, index, memberMask);
        if (earlier) await confirmDuplicates(earlier, valueset, index, scans, clients, listed);
      }
      await Promise.all(holders.map(pull));
    }
  } finally {
    for (const iterator of iterators.values()) await iterator.return(undefined).catch(() => undefined);
    for (const client of clients.values()) client.close();
  }
  return { members: scans, comparedUpTo, firstDifference, differingIndexes };
}

/** Re-reads each earlier candidate from the member, so that a fingerprint collision is not reported. */
async function confirmDuplicates(
  earlier: readonly { index: number; members: number }[],
  valueset: string,
  index: number,
  scans: readonly MemberScan[],
  clients: ReadonlyMap<number, IngestClient>,
  listed: number,
): Promise<void> {
  for (const occurrence of earlier) {
    for (let k = 0; k < scans.length; k++) {
      if ((occurrence.members & (1 << k)) === 0) continue;
      const client = clients.get(k);
      if (!client) continue;
      let stored: StoredMessage | undefined;
      try {
        for await (const message of client.read(occurrence.index, 1, false)) stored = message;
      } catch {
        stored = undefined;
      }
      if (stored?.index !== occurrence.index || stored.valueset !== valueset) continue;
      const scan = scans[k]!;
      scan.duplicateCount += 1;
      if (scan.duplicates.length < listed) scan.duplicates.push({ valueset, firstIndex: occurrence.index, index });
    }
  }
}

function summarize(
  targets: readonly VerifyTarget[],
  before: readonly StatusProbe[],
  after: readonly StatusProbe[],
  scan: ScanOutcome,
  attempts: number,
  allowBusy: boolean,
): VerifyResult {
  const problems: string[] = [];
  const members = targets.map((target, k): MemberVerification => {
    const s = scan.members[k]!;
    const beforeProbe = before[k]!;
    const afterProbe = after[k]!;
    const b = 'status' in beforeProbe ? beforeProbe.status : null;
    const a = 'status' in afterProbe ? afterProbe.status : null;
    const checked = b !== null && s.error === null;
    const checkedDigest = s.digest.toString('hex');
    const countMatches = checked ? s.checkedCount === b.messageCount : null;
    const digestMatches = checked ? checkedDigest === b.digest : null;
    if (s.error !== null) problems.push(`${s.label}: ${s.error}`);
    if (b !== null && countMatches === false) {
      problems.push(`${s.label}: Read returned ${s.checkedCount} messages up to index ${b.appliedIndex}, /status says ${b.messageCount}`);
    }
    if (b !== null && digestMatches === false) {
      problems.push(`${s.label}: digest of the messages read up to index ${b.appliedIndex} is ${checkedDigest}, /status says ${b.digest}`);
    }
    for (const d of s.duplicates) {
      problems.push(`${s.label}: stores ${showValueset(d.valueset)} twice, at indexes ${d.firstIndex} and ${d.index}`);
    }
    if (s.duplicateCount > s.duplicates.length) {
      problems.push(`${s.label}: ${s.duplicateCount - s.duplicates.length} more duplicate valuesets`);
    }
    return {
      label: s.label,
      grpc: target.grpc,
      http: target.http,
      before: b,
      after: a,
      error: s.error,
      messagesRead: s.messagesRead,
      checkedCount: s.checkedCount,
      checkedDigest,
      countMatches,
      digestMatches,
      moved: b === null || a === null || a.appliedIndex !== b.appliedIndex,
      first: s.first,
      last: s.last,
      duplicateCount: s.duplicateCount,
      duplicates: s.duplicates,
    };
  });
  if (scan.firstDifference) {
    const values = scan.firstDifference.values
      .map((v) => `${v.member} ${v.valueset === null ? '(no message)' : showValueset(v.valueset)}`)
      .join(', ');
    problems.push(
      `members differ at ${scan.differingIndexes} of the indexes up to ${scan.comparedUpTo}; ` +
        `first difference at index ${scan.firstDifference.index}: ${values}`,
    );
  }
  const busy = busyReasons(members);
  const quiescent = busy.length === 0;
  const busyProblem = quiescent
    ? null
    : `cluster not quiescent after ${attempts} attempt(s) (${busy.join('; ')}); members compared up to index ${scan.comparedUpTo} only`;
  const ok = problems.length === 0 && (quiescent || allowBusy);
  if (busyProblem !== null && !allowBusy) problems.push(busyProblem);
  return {
    ok,
    quiescent,
    attempts,
    comparedUpTo: scan.comparedUpTo,
    members,
    firstDifference: scan.firstDifference,
    differingIndexes: scan.differingIndexes,
    problems,
    verdict: verdictLine(ok, quiescent, members, scan, problems),
  };
}

function busyReasons(members: readonly MemberVerification[]): string[] {
  const reasons: string[] = [];
  for (const m of members) {
    if (m.before === null) continue;
    if (m.after === null) reasons.push(`${m.label}: /status failed after the read`);
    else if (m.after.appliedIndex !== m.before.appliedIndex) {
      reasons.push(`${m.label} applied ${m.before.appliedIndex} -> ${m.after.appliedIndex} during the read`);
    }
  }
  const applied = members.flatMap((m) => (m.before ? [`${m.label} ${m.before.appliedIndex}`] : []));
  if (new Set(members.flatMap((m) => (m.before ? [m.before.appliedIndex] : []))).size > 1) {
    reasons.push(`applied indexes differ: ${applied.join(', ')}`);
  }
  return reasons;
}

function verdictLine(
  ok: boolean,
  quiescent: boolean,
  members: readonly MemberVerification[],
  scan: ScanOutcome,
  problems: readonly string[],
): string {
  const reference = members[0]!;
  // One member has no other member to agree with, only its own /status.
  const agree = members.length === 1 ? 'the only member agrees with its /status' : `all ${members.length} members agree`;
  if (ok && quiescent) {
    return `OK: ${agree}: ${reference.checkedCount} messages up to index ` +
      `${scan.comparedUpTo}, digest ${reference.checkedDigest.slice(0, 16)}`;
  }
  if (ok) {
    return `OK (busy): ${agree} on indexes 1..${scan.comparedUpTo}; ` +
      'the cluster was still applying entries, so later indexes were not compared';
  }
  if (scan.firstDifference) {
    return `FAIL: members differ; first difference at index ${scan.firstDifference.index} ` +
      `(${problems.length} problem(s) in all)`;
  }
  return `FAIL: ${problems[0] ?? 'unknown problem'}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`;
}

/** A valueset quoted for a message, shortened when long. */
export function showValueset(valueset: string, max = 80): string {
  if (valueset.length <= max) return JSON.stringify(valueset);
  return `${JSON.stringify(valueset.slice(0, max))}... (${valueset.length} characters)`;
}
