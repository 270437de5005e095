import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { AppendResult } from '../node/waiters';
import { errors, ReplogError } from './errors';
import type { AppendReplyWire } from './unary-append';

/**
 * Largest gRPC message a member's servers accept, from clients and from peers.
 * A server reads a whole message before the handler can reject it, so this
 * bounds the memory that one oversized request takes. A valueset is at most
 * 65,536 bytes, and members split what they send to peers well below this.
 */
export const grpcMessageBytesMax = 1024 * 1024;

/** Channel options for member-to-member connections. */
export const peerChannelOptions: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  // A message above the peer's limit fails here, with a clear local error.
  'grpc.max_send_message_length': grpcMessageBytesMax,
  // Find a dead peer within seconds rather than at the OS's TCP timeout.
  'grpc.keepalive_time_ms': 5000,
  'grpc.keepalive_timeout_ms': 3000,
  'grpc.keepalive_permit_without_calls': 1,
  // A restarted member is reachable again within a second.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  // Each channel gets its own connections, so a channel that replaces a hung
  // one (PeerLink.checkConnection) does not reuse the hung connection attempt.
  'grpc.use_local_subchannel_pool': 1,
};

/**
 * Time after which a connection attempt to a peer that has not completed its
 * HTTP/2 handshake is given up and started again on a new channel. grpc-js
 * sets no connect timeout. An attempt whose SYN was lost, as behind a failed
 * router, waits for the kernel's SYN resends 1, 3, 7, 15, 31 and 63 s after it
 * started (Linux's default of 6 retries). A member cut off for half a minute
 * could then rejoin up to 30 s after the network healed. A handshake between
 * members takes milliseconds.
 */
export const connectAttemptMaxMs = 3000;

/**
 * Options of a member's gRPC servers (Ingest and Peer). Peers find a dead
 * member with their channels' pings, so the server pings rarely and waits
 * long for the reply. When a member resumes after a pause (SIGSTOP, a long
 * garbage collection), grpc-js runs its ping timeout before it reads the
 * reply that arrived meanwhile. With the peers' 3 s timeout, a member
 * paused for 3 s right after a ping closed every client's connection, and
 * the appends in flight failed with INTERNAL.
 */
export const memberServerOptions: grpc.ServerOptions = {
  'grpc.max_receive_message_length': grpcMessageBytesMax,
  'grpc.max_send_message_length': grpcMessageBytesMax,
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
};

/**
 * Bytes of frames queued on one Raft stream before frames are dropped; Raft
 * resends what is lost. A follower catching up on large entries reaches it as
 * well as one that stopped reading. In a catch-up of 330 MB of 60 KB entries,
 * 128 MiB let the leader peak at 619 MB of RSS, and 32 MiB at 439 MB, with the
 * same catch-up time.
 */
export const raftStreamBufferedBytesDefault = 32 * 1024 * 1024;
/** Maximum valuesets in one forwarded batch. No build sends more, and a member rejects a longer batch. */
export const forwardBatchMax = 2048;
/**
 * UTF-8 bytes of the valuesets of one forwarded batch, counted as 3 per UTF-16
 * code unit, an upper bound. Keeps a batch of long valuesets below grpcMessageBytesMax.
 */
const forwardBatchBytesMax = 256 * 1024;

interface ForwardItem {
  readonly valueset: string;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: ReplogError) => void;
}

type PeerClient = grpc.Client & {
  Raft(callback: grpc.requestCallback<object>): grpc.ClientWritableStream<{ payload: Buffer }>;
  Forward(): grpc.ClientDuplexStream<{ batchId: number; valuesets: string[] }, { batchId: number; replies: AppendReplyWire[] }>;
  InstallSnapshot(callback: grpc.requestCallback<{ ok: boolean; error: string }>): grpc.ClientWritableStream<object>;
};

type ForwardStream = ReturnType<PeerClient['Forward']>;

/**
 * The connection from this member to one peer: a one-way stream of Raft
 * frames, a stream of forwarded appends (used while the peer leads), and
 * snapshot transfers. Streams are reopened on the next use after a failure.
 */
export class PeerLink {
  private raftStream: grpc.ClientWritableStream<{ payload: Buffer }> | null = null;
  /**
   * Payload bytes written to `raftStream` whose write callback has not run.
   * The stream's own writableLength counts frames, not bytes, because grpc-js
   * streams are in object mode.
   */
  private raftQueuedBytes = 0;
  private forwardStream: ForwardStream | null = null;
  private forwardQueue: ForwardItem[] = [];
  /** Batches sent and awaiting a reply, by batch id, with the stream each went on. */
  private readonly forwardPending = new Map<number, { readonly stream: ForwardStream; readonly items: ForwardItem[] }>();
  private nextBatchId = 1;
  private flushScheduled = false;
  private droppedFrames = 0;
  /** Frames dropped because the peer was not connected. */
  private unsentFrames = 0;
  /** When checkConnection() first saw the channel connecting, from performance.now(); null when it was not. */
  private connectingSinceMs: number | null = null;
  /** Channels replaced since the peer was last connected; every tenth replacement is logged at info level. */
  private hungConnects = 0;

  /**
   * `newClient` creates a replacement client when a connection attempt hangs
   * (checkConnection). Without it, the link keeps `client` for good.
   */
  constructor(
    readonly peerId: string,
    private currentClient: PeerClient,
    private readonly log: Logger,
    private readonly raftQueuedBytesMax = raftStreamBufferedBytesDefault,
    private readonly newClient: (() => PeerClient) | null = null,
  ) {}

  /** The client of this peer's current channel; checkConnection() may replace it. */
  get client(): PeerClient {
    return this.currentClient;
  }

  /**
   * Replaces the channel when it has been connecting for connectAttemptMaxMs
   * or longer: the Raft and forward streams are dropped, the appends waiting
   * on a forward fail with ForwardAbandonedError (which the member retries),
   * and the new channel starts connecting at once. Call it about twice a
   * second with the time from performance.now().
   */
  checkConnection(nowMs: number): void {
    if (this.newClient === null) return;
    const state = this.currentClient.getChannel().getConnectivityState(false);
    if (state === grpc.connectivityState.READY) this.hungConnects = 0;
    if (state !== grpc.connectivityState.CONNECTING) {
      this.connectingSinceMs = null;
      return;
    }
    if (this.connectingSinceMs === null) {
      this.connectingSinceMs = nowMs;
      return;
    }
    const connectingMs = nowMs - this.connectingSinceMs;
    if (connectingMs < connectAttemptMaxMs) return;
    const fields = { peerId: this.peerId, connectingMs: Math.round(connectingMs), hungConnects: this.hungConnects + 1 };
    if (this.hungConnects++ % 10 === 0) this.log.info(fields, 'connection to peer hung; connecting again');
    else this.log.debug(fields, 'connection to peer hung; connecting again');
    this.connectingSinceMs = null;
    this.abandonForwards(`the connection to it hung for ${Math.round(connectingMs)} ms`);
    const raftStream = this.raftStream;
    this.raftStream = null;
    this.raftQueuedBytes = 0;
    raftStream?.cancel();
    const hung = this.currentClient;
    this.currentClient = this.newClient();
    // NOTE: grpc-js does not close a socket that is still connecting, so a hung
    // SYN-SENT socket stays until the kernel gives up, about 2 minutes later.
    hung.close();
    this.currentClient.getChannel().getConnectivityState(true);
  }

  sendFrame(payload: Buffer): void {
    // grpc-js keeps the messages of a call until its channel connects, so
    // frames for a peer that is down would pile up in memory. Raft resends
    // what is lost, so they are dropped instead; asking for the state starts
    // a connection attempt.
    if (this.raftStream === null && this.client.getChannel().getConnectivityState(true) !== grpc.connectivityState.READY) {
      if (this.unsentFrames++ % 1000 === 0) {
        this.log.debug({ peerId: this.peerId, unsentFrames: this.unsentFrames }, 'peer not connected; dropping Raft frames');
      }
      return;
    }
    const stream = this.raftStream ?? this.openRaftStream();
    if (this.raftQueuedBytes > 0 && this.raftQueuedBytes + payload.byteLength > this.raftQueuedBytesMax) {
      if (this.droppedFrames++ % 1000 === 0) {
        this.log.warn(
          { peerId: this.peerId, droppedFrames: this.droppedFrames, queuedBytes: this.raftQueuedBytes },
          'peer stream is full; dropping Raft frames',
        );
      }
      return;
    }
    this.raftQueuedBytes += payload.byteLength;
    stream.write({ payload }, () => {
      // A write to a stream that was replaced in the meantime no longer counts.
      if (this.raftStream === stream) this.raftQueuedBytes -= payload.byteLength;
    });
  }

  private openRaftStream(): grpc.ClientWritableStream<{ payload: Buffer }> {
    const stream = this.client.Raft((err) => {
      if (this.raftStream === stream) {
        this.raftStream = null;
        this.raftQueuedBytes = 0;
      }
      if (err && err.code !== grpc.status.CANCELLED) {
        this.log.debug({ peerId: this.peerId, err: err.message }, 'peer stream closed');
      }
    });
    this.raftStream = stream;
    return stream;
  }

  forward(valueset: string): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.forwardQueue.push({ valueset, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => this.flushForwards());
    });
  }

  private flushForwards(): void {
    this.flushScheduled = false;
    if (this.forwardQueue.length === 0) return;
    const stream = this.forwardStream ?? this.openForwardStream();
    while (this.forwardQueue.length > 0) {
      const batch = this.forwardQueue.splice(0, forwardBatchLength(this.forwardQueue));
      const batchId = this.nextBatchId++;
      this.forwardPending.set(batchId, { stream, items: batch });
      stream.write({ batchId, valuesets: batch.map((item) => item.valueset) });
    }
  }

  private openForwardStream(): ForwardStream {
    const stream = this.client.Forward();
    this.forwardStream = stream;
    stream.on('data', (message: { batchId: number; replies: AppendReplyWire[] }) => {
      this.settleBatch(message.batchId, message.replies);
    });
    const fail = (reason: string): void => {
      if (this.forwardStream === stream) this.forwardStream = null;
      // Batches sent on a newer stream, opened after abandonForwards, keep waiting for their replies.
      for (const [batchId, pending] of this.forwardPending) {
        if (pending.stream !== stream) continue;
        this.forwardPending.delete(batchId);
        for (const item of pending.items) item.reject(errors.forwardFailed(this.peerId, reason));
      }
    };
    stream.on('error', (err: grpc.ServiceError) => fail(err.details || err.message));
    stream.on('end', () => fail('the leader closed the stream'));
    return stream;
  }

  /**
   * Fails every forwarded append that waits for this peer, queued or sent,
   * with ForwardAbandonedError giving `reason`, and cancels the stream they
   * went on. The member calls this when the peer stops leading: a leader that
   * is paused or cut off keeps the connection open until a ping times out,
   * seconds after another member has taken over.
   */
  abandonForwards(reason: string): void {
    const stream = this.forwardStream;
    this.forwardStream = null;
    const waiting = [...this.forwardQueue, ...[...this.forwardPending.values()].flatMap((pending) => pending.items)];
    this.forwardQueue = [];
    this.forwardPending.clear();
    for (const item of waiting) item.reject(errors.forwardAbandoned(this.peerId, reason));
    stream?.cancel();
  }

  private settleBatch(batchId: number, replies: readonly AppendReplyWire[]): void {
    const batch = this.forwardPending.get(batchId)?.items;
    if (!batch) return;
    this.forwardPending.delete(batchId);
    batch.forEach((item, i) => {
      const reply = replies[i];
      if (!reply) item.reject(errors.forwardFailed(this.peerId, `reply ${i} of batch ${batchId} is missing`));
      else if (reply.code === 0) item.resolve({ index: reply.index, duplicate: reply.duplicate });
      else item.reject(errors.fromLeaderReply(this.peerId, reply.code, reply.error));
    });
  }

  close(): void {
    this.raftStream?.end();
    this.forwardStream?.end();
    this.currentClient.close();
  }
}

/** Returns how many items from the front of `queue` fit in one forwarded batch; at least one. */
function forwardBatchLength(queue: readonly ForwardItem[]): number {
  let bytes = 0;
  let count = 0;
  while (count < queue.length && count < forwardBatchMax) {
    bytes += (queue[count] as ForwardItem).valueset.length * 3;
    if (count > 0 && bytes > forwardBatchBytesMax) break;
    count++;
  }
  return count;
}
