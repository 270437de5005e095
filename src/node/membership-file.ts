// The record of which cluster a data folder belongs to. Raft's safety rests on
// every member counting votes and acknowledgements against the same set of
// members. A member started on old data with other --peers (say alone, after
// `replog cluster --size 1` on a folder of 3) could form a majority of its own
// and commit entries over ones the old cluster acknowledged. replog has no
// membership change, so a member refuses to start on such a folder.
import fs from 'node:fs';
import path from 'node:path';
import { raftLogFileName } from '../storage/raft-log';
import { makeDirectoryDurablySync, removeFileIfExists, removeSqliteFiles, writeFileDurablySync } from '../storage/durable-fs';
import { snapshotsDirectory } from '../storage/snapshot-files';
import { stateDirectory } from '../storage/state-dir';

export const membershipFileName = 'membership.json';

/**
 * File in the data folder of a member started with --rejoin on an empty
 * folder, until a leader has caught it up. While it exists the member
 * withholds its votes, also after a restart without the flag.
 */
export const rejoinMarkerFileName = 'rejoining';

/** The member a data folder belongs to, and the ids of its cluster. */
export interface Membership {
  readonly id: string;
  readonly members: readonly string[];
}

/** A data folder written by another member or by a cluster of other members. */
export class MembershipMismatchError extends Error {
  override readonly name = 'MembershipMismatchError';
}

/**
 * Checks that `dataDir` belongs to member `id` of a cluster of `memberIds`.
 * A folder without a record gets one in membership.json: a new folder, or one
 * written before the record existed, whose membership is then taken on trust.
 * Throws MembershipMismatchError naming both memberships when they differ, and
 * an Error when the record is damaged.
 */
export function checkMembership(dataDir: string, id: string, memberIds: readonly string[]): 'new' | 'recorded' | 'matches' {
  const expected: Membership = { id, members: [...memberIds].sort() };
  const file = path.join(dataDir, membershipFileName);
  checkRaftLogKept(dataDir);
  if (!fs.existsSync(file)) {
    const isNew = !fs.existsSync(path.join(dataDir, raftLogFileName));
    makeDirectoryDurablySync(dataDir);
    writeFileDurablySync(file, `${JSON.stringify(expected)}\n`);
    return isNew ? 'new' : 'recorded';
  }
  const recorded = readMembership(file);
  const sameMembers = recorded.members.length === expected.members.length && recorded.members.every((m, i) => m === expected.members[i]);
  if (recorded.id === id && sameMembers) return 'matches';
  throw new MembershipMismatchError(
    `data folder ${dataDir} belongs to member ${recorded.id} of a cluster of ${recorded.members.join(',')}, ` +
      `but this member is ${id} of a cluster of ${expected.members.join(',')} (--id and --peers). ` +
      `replog cannot change a cluster's members or a member's id: start with the same --id and --peers ids, ` +
      `or give a new cluster new --data folders`,
  );
}

/**
 * Throws when the Raft log of a folder that has been used is missing. A
 * member creates raft.db before its state folder, so a state folder without
 * raft.db means the log was deleted, and with it the member's term and vote.
 * Starting anyway would let it vote a second time in a term it already voted
 * in, and two leaders could then be elected in that term.
 */
function checkRaftLogKept(dataDir: string): void {
  if (fs.existsSync(path.join(dataDir, raftLogFileName)) || !fs.existsSync(stateDirectory(dataDir))) return;
  throw new Error(
    `data folder ${dataDir} has a state folder but no ${raftLogFileName}: the Raft log, with this member's term and vote, is lost, ` +
      `and starting without it could elect two leaders in one term. Restore ${raftLogFileName} from a backup, ` +
      `or move the whole folder away and start this member on an empty --data folder with --rejoin: ` +
      `it then copies the state from the leader and votes only once it has caught up`,
  );
}

/** Folders of a data folder that existed before a start, which a failed start must keep. */
export interface FoldersBeforeStart {
  readonly snapshots: boolean;
}

/** Returns which of the folders that a failed start must keep exist now. */
export function foldersBeforeStart(dataDir: string): FoldersBeforeStart {
  return { snapshots: fs.existsSync(snapshotsDirectory(dataDir)) };
}

/**
 * Deletes what a start on a new data folder created, after the start failed
 * before the member took part in the cluster. Its record, empty log and state
 * contain nothing yet, and the record would reject a retry with other
 * --peers. Snapshot files put there by hand before the start stay. The state
 * folder goes first, so that a crash here never leaves it without raft.db.
 */
export function forgetNewDataFolder(dataDir: string, before: FoldersBeforeStart): void {
  fs.rmSync(stateDirectory(dataDir), { recursive: true, force: true });
  removeSqliteFiles(path.join(dataDir, raftLogFileName));
  removeFileIfExists(path.join(dataDir, membershipFileName));
  removeFileIfExists(path.join(dataDir, rejoinMarkerFileName));
  if (!before.snapshots) fs.rmSync(snapshotsDirectory(dataDir), { recursive: true, force: true });
}

/** Returns the membership recorded in the data folder `dataDir`, or null when it has no record. */
export function readMembershipOf(dataDir: string): Membership | null {
  const file = path.join(dataDir, membershipFileName);
  return fs.existsSync(file) ? readMembership(file) : null;
}

function readMembership(file: string): Membership {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`invalid ${file}: ${(err as Error).message}; it records the member's id and cluster, so restore it or use a new --data folder`);
  }
  const { id, members } = (parsed ?? {}) as { id?: unknown; members?: unknown };
  if (typeof id !== 'string' || !Array.isArray(members) || !members.every((m) => typeof m === 'string')) {
    throw new Error(`invalid ${file}: expected {"id": string, "members": [string, ...]}; restore it or use a new --data folder`);
  }
  return { id, members: [...(members as string[])].sort() };
}
