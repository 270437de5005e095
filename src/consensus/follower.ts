import { assertInvariant } from './assert';
import type { RaftLog } from './log';
import type { AppendRequest, AppendResponse, Entry } from './types';

/** The fields of an AppendResponse that a follower's log decides. */
export type AppendOutcome = Pick<AppendResponse, 'success' | 'matchIndex' | 'rejectHintIndex' | 'rejectHintTerm'>;

/**
 * Applies a leader's append to a follower's log: the consistency check on
 * prevLogIndex and prevLogTerm, new entries, and the commit index. Returns
 * the outcome for the response.
 */
export function appendFromLeader(log: RaftLog, message: AppendRequest): AppendOutcome {
  const commit = log.commitIndex;
  if (message.prevLogIndex < commit) return appendAfterCommit(log, message, commit);
  if (log.termAt(message.prevLogIndex) !== message.prevLogTerm) return rejectAppend(log, message);
  return acceptEntries(log, message, message.prevLogIndex, message.entries);
}

/**
 * Handles an append that starts below the commit index. Committed entries
 * are in every later leader's log, so the ones in the request are skipped.
 */
function appendAfterCommit(log: RaftLog, message: AppendRequest, commit: number): AppendOutcome {
  const skip = commit - message.prevLogIndex;
  const lastSkipped = message.entries[Math.min(skip, message.entries.length) - 1];
  const ownTerm = lastSkipped === undefined ? undefined : log.termAt(lastSkipped.index);
  if (lastSkipped !== undefined && ownTerm !== undefined) {
    assertInvariant(lastSkipped.term === ownTerm, 'committed entries match the leader', {
      index: lastSkipped.index,
      leaderTerm: lastSkipped.term,
      ownTerm,
    });
  }
  if (message.entries.length <= skip) return success(commit);
  return acceptEntries(log, message, commit, message.entries.slice(skip));
}

function acceptEntries(
  log: RaftLog,
  message: AppendRequest,
  prevLogIndex: number,
  entries: readonly Entry[],
): AppendOutcome {
  const lastNewIndex = log.appendFromLeader(prevLogIndex, entries);
  log.commitTo(Math.min(message.commit, lastNewIndex));
  return success(lastNewIndex);
}

/**
 * Rejects an append whose previous entry does not match. The hint is the
 * last entry at or below prevLogIndex with a term no later than
 * prevLogTerm, so the leader can skip a whole divergent term at once.
 */
function rejectAppend(log: RaftLog, message: AppendRequest): AppendOutcome {
  const hintIndex = log.findConflictByTerm(Math.min(message.prevLogIndex, log.lastIndex), message.prevLogTerm);
  return { success: false, matchIndex: 0, rejectHintIndex: hintIndex, rejectHintTerm: log.termAt(hintIndex) ?? 0 };
}

/** Returns a successful outcome: the log matches the leader's up to `matchIndex`. */
export function success(matchIndex: number): AppendOutcome {
  return { success: true, matchIndex, rejectHintIndex: 0, rejectHintTerm: 0 };
}
