// Types shared by the Raft core, its driver and the simulator. The core is pure:
// it never touches sockets, timers, the clock, randomness or the disk. Input is
// tick(), step(message) and propose(data); output is one Ready batch at a time.

export type NodeId = string;

export enum EntryType {
  /** Client data: one encoded message of the state machine. */
  Normal = 0,
  /** Empty entry a new leader appends so that entries of earlier terms commit. */
  Noop = 1,
}

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** Opaque to the core; empty for Noop entries. */
  readonly data: Uint8Array;
}

/** The state a member must fsync before it sends any message that depends on it. */
export interface HardState {
  readonly term: number;
  /** The candidate this member voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** Index and term of the last entry a snapshot covers. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
}

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** RequestVote, or its pre-vote probe, which changes no state on the receiver. */
export interface VoteRequest extends MessageBase {
  readonly type: 'vote';
  readonly preVote: boolean;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set when the leader handed over its role: voters grant it even while they hear from that leader. */
  readonly transfer?: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: 'voteResponse';
  readonly preVote: boolean;
  readonly granted: boolean;
}

export interface AppendRequest extends MessageBase {
  readonly type: 'append';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  /**
   * Set on an append that only carries a new commit index to a follower in
   * replicate state, whose acknowledgement of prevLogIndex the leader has or
   * awaits. A reply would repeat it, so the follower sends none when the
   * append succeeds.
   */
  readonly noReply?: true;
}

export interface AppendResponse extends MessageBase {
  readonly type: 'appendResponse';
  readonly success: boolean;
  /** On success: the index of the last entry the follower now matches. */
  readonly matchIndex: number;
  /**
   * On rejection, for fast back-off: the follower's largest index at or below
   * the request's prevLogIndex whose term is at most prevLogTerm, and that term.
   */
  readonly rejectHintIndex: number;
  readonly rejectHintTerm: number;
}

/** Leader liveness and commit propagation; carries min(commit, peer match). */
export interface HeartbeatRequest extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  /**
   * The leader's commit index, which the core ignores. A follower's driver
   * learns from it how far behind the follower is, also when `commit` is
   * held to an old match index, such as right after the follower restarted.
   * Members of earlier builds leave it out.
   */
  readonly leaderCommit?: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeatResponse';
  /**
   * The follower's last log index. Below the leader's match index it shows a
   * follower that lost entries it had acknowledged, such as one restarted on
   * an empty data folder. Members of earlier builds leave it out.
   */
  readonly lastIndex?: number;
}

/**
 * InstallSnapshot. The core emits it with the metadata only; the driver streams
 * the snapshot's bytes and, on the receiver, steps the message into the core
 * once the data is verified and staged.
 */
export interface SnapshotRequest extends MessageBase {
  readonly type: 'snapshot';
  readonly snapshot: SnapshotMeta;
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | SnapshotRequest
  | TimeoutNowRequest;

/** Message from a leader handing over its role to a follower that has its whole log: start an election now. */
export interface TimeoutNowRequest extends MessageBase {
  readonly type: 'timeoutNow';
}

export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId | null;
  readonly term: number;
}

/**
 * One batch of work for the driver. It must be performed in this order:
 * 1. if `snapshot` is set, install it (state machine and log start) atomically;
 * 2. persist `entries` (first deleting every stored entry at or after
 *    entries[0].index) and `hardState`, and fsync;
 * 3. send `messages`;
 * 4. apply `committedEntries` in order;
 * 5. call `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState;
  /** Set when term, vote or commit changed since the previous Ready. */
  readonly hardState: HardState | null;
  readonly snapshot: SnapshotMeta | null;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
}

/** State a member restores from its disk when it starts. */
export interface RestoredState {
  readonly hardState: HardState;
  /** The newest snapshot; index 0 and term 0 when there is none. */
  readonly snapshot: SnapshotMeta;
  /**
   * Index and term of the entry just before `entries[0]`: equal to the
   * snapshot, or below it when a trailing window of the log is kept.
   */
  readonly logStart: SnapshotMeta;
  /** Stored entries after `logStart.index`, contiguous. */
  readonly entries: readonly Entry[];
  /** Index of the last entry the state machine applied (at least snapshot.index). */
  readonly appliedIndex: number;
}

export interface PeerProgress {
  readonly id: NodeId;
  readonly matchIndex: number;
  readonly nextIndex: number;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  /** Ticks since the leader last heard from this peer. */
  readonly ticksSinceContact: number;
}

export interface CoreStatus extends SoftState {
  readonly id: NodeId;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastLogIndex: number;
  readonly snapshotIndex: number;
  /** Followers' progress; empty unless this member is the leader. */
  readonly peers: readonly PeerProgress[];
}

/** Minimal structured logger (pino's call shape). */
export interface CoreLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Every member's id, this member included. */
  readonly peers: readonly NodeId[];
  /** Election timeout is drawn from [electionTimeoutTicks, 2 * electionTimeoutTicks). */
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Upper bounds for one AppendRequest. */
  readonly appendEntriesMax: number;
  readonly appendBytesMax: number;
  /** AppendRequests in flight per follower before the leader waits for replies. */
  readonly inflightAppendsMax: number;
  /**
   * Bytes of entry data in flight per follower before the leader waits for
   * replies; one append may exceed it. No bound when not set.
   */
  readonly inflightBytesMax?: number;
  /** Seeded source of uniform numbers in [0, 1). */
  readonly random: () => number;
  readonly logger?: CoreLogger;
  /**
   * Storage to read persisted entries back from. With it, the log keeps the
   * data of only the newest `entryCacheMax` applied entries (up to a quarter
   * more between drops) and reads older ones when a follower needs them.
   * Without it, every entry stays in memory.
   */
  readonly entryReader?: EntryReader;
  readonly entryCacheMax?: number;
  /**
   * Bytes of entry data in memory above which applied entries are dropped
   * even within `entryCacheMax`, so large entries do not fill the memory.
   * NOTE: entries not yet applied or persisted always stay, so a follower
   * far behind can hold more than this until it applies them.
   */
  readonly entryCacheBytesMax?: number;
  /**
   * Whether this member withholds its votes: it grants no vote or pre-vote,
   * and does not campaign, until its log is on disk up to the commit index of
   * the first append a leader sent it. A member that lost its data sets it,
   * because its empty log cannot tell a candidate that lacks entries it had
   * helped commit, and could itself win with the votes of such members.
   */
  readonly holdVotes?: boolean;
}

/** Reads persisted entries back from durable storage, for the core. */
export interface EntryReader {
  /**
   * Returns the entries from `fromIndex` on, none above `toIndex`, at most
   * `bytesMax` bytes of data but at least one entry.
   */
  read(fromIndex: number, toIndex: number, bytesMax: number): Entry[];
}

export type ProposeResult =
  | { readonly ok: true; readonly firstIndex: number; readonly term: number }
  | { readonly ok: false; readonly leaderId: NodeId | null };
