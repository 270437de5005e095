import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Member } from '../node/member';
import { latestSnapshot, snapshotChunks, SnapshotReceiver, snapshotsDirectory } from '../storage/snapshot-files';
import { toReplogError } from './errors';
import { decodeMessages } from './peer-codec';
import { failStream, waitForDrain } from './server-stream';

/** Size of one FetchSnapshot data chunk. */
const fetchChunkBytes = 256 * 1024;

interface SnapshotChunkWire {
  readonly from: string;
  readonly term: number;
  readonly index: number;
  readonly snapshotTerm: number;
  readonly sha256: string;
  readonly totalBytes: number;
  readonly data: Buffer;
}

interface ForwardBatchWire {
  readonly batchId: number;
  readonly valuesets: string[];
}

/**
 * Time between two warnings about invalid frames on one Raft stream. Each
 * warning's `dropped` field counts the frames since the one before.
 */
const invalidFrameWarnIntervalMs = 10_000;

/**
 * Handlers of the internal Peer service, which members call on each other.
 * Raft and Forward calls with plain messages go to peer-calls.ts instead, and
 * these two handlers serve only the rest, such as compressed ones.
 */
export function peerServiceHandlers(member: Member, log: Logger): grpc.UntypedServiceImplementation {
  return {
    Raft: (call: grpc.ServerReadableStream<{ payload: Buffer }, object>, callback: grpc.sendUnaryData<object>) => {
      // A peer whose frames fail keeps sending such frames, several a second.
      let droppedSinceWarning = 0;
      let warnedAtMs = -Infinity;
      call.on('data', (frame: { payload: Buffer }) => {
        try {
          member.receive(decodeMessages(frame.payload));
        } catch (err) {
          droppedSinceWarning += 1;
          const now = performance.now();
          if (now - warnedAtMs < invalidFrameWarnIntervalMs) return;
          log.warn({ err: (err as Error).message, peer: call.getPeer(), dropped: droppedSinceWarning }, 'dropped an invalid peer frame');
          warnedAtMs = now;
          droppedSinceWarning = 0;
        }
      });
      call.on('end', () => callback(null, {}));
      call.on('error', () => undefined);
    },
    Forward: (call: grpc.ServerDuplexStream<ForwardBatchWire, object>) => handleForward(member, call),
    FetchSnapshot: (call: grpc.ServerWritableStream<{ from: string; minIndex: number }, object>) =>
      void handleFetchSnapshot(member, log, call),
    InstallSnapshot: (call: grpc.ServerReadableStream<SnapshotChunkWire, object>, callback: grpc.sendUnaryData<object>) =>
      handleInstallSnapshot(member, log, call, callback),
  };
}

function handleForward(member: Member, call: grpc.ServerDuplexStream<ForwardBatchWire, object>): void {
  let pending = 0;
  let ended = false;
  call.on('data', (batch: ForwardBatchWire) => {
    pending++;
    void Promise.allSettled(batch.valuesets.map((valueset) => member.append(valueset, true))).then((results) => {
      const replies = results.map((r) => {
        if (r.status === 'fulfilled') return { index: r.value.index, duplicate: r.value.duplicate, code: 0, error: '' };
        const err = toReplogError(r.reason);
        return { index: 0, duplicate: false, code: err.code, error: err.message };
      });
      if (!call.cancelled) call.write({ batchId: batch.batchId, replies });
      if (--pending === 0 && ended) call.end();
    });
  });
  call.on('end', () => {
    ended = true;
    if (pending === 0) call.end();
  });
  call.on('error', () => undefined);
}

function handleInstallSnapshot(
  member: Member,
  log: Logger,
  call: grpc.ServerReadableStream<SnapshotChunkWire, object>,
  callback: grpc.sendUnaryData<object>,
): void {
  let receiver: SnapshotReceiver | null = null;
  let header: SnapshotChunkWire | null = null;
  const fail = (message: string): void => {
    receiver?.abort();
    receiver = null;
    member.metrics.snapshotsReceived.inc({ result: 'failed' });
    log.warn({ err: message }, 'receiving snapshot failed');
    callback(null, { ok: false, error: message });
  };
  call.on('data', (chunk: SnapshotChunkWire) => {
    try {
      if (!receiver) {
        header = chunk;
        const meta = { index: chunk.index, term: chunk.snapshotTerm };
        log.info({ from: chunk.from, snapshotIndex: meta.index, bytes: chunk.totalBytes }, 'receiving snapshot');
        receiver = new SnapshotReceiver(snapshotsDirectory(member.config.dataDir), meta, chunk.sha256, chunk.totalBytes);
      }
      receiver.write(chunk.data);
    } catch (err) {
      call.destroy();
      fail((err as Error).message);
    }
  });
  call.on('end', () => {
    if (!receiver || !header) return fail('the stream carried no snapshot header');
    try {
      const filePath = receiver.finish();
      receiver = null;
      member.receiveSnapshot(header.from, header.term, { index: header.index, term: header.snapshotTerm }, filePath);
      callback(null, { ok: true, error: '' });
    } catch (err) {
      fail((err as Error).message);
    }
  });
  call.on('error', (err) => {
    receiver?.abort();
    receiver = null;
    log.warn({ err: err.message }, 'snapshot stream failed');
  });
  // A sender that dies mid-transfer cancels the call without 'end' or
  // 'error'. Without this, its partial file stays open until a restart.
  call.on('cancelled', () => {
    if (!receiver) return;
    receiver.abort();
    receiver = null;
    member.metrics.snapshotsReceived.inc({ result: 'failed' });
    log.warn({ from: header?.from, snapshotIndex: header?.index }, 'snapshot stream cancelled by the sender; partial file deleted');
  });
}

/**
 * Streams this member's newest snapshot to a peer rebuilding its state. When
 * the newest is older than the peer needs, this member takes a new one for
 * the peer's next attempt and fails the call with FAILED_PRECONDITION.
 */
async function handleFetchSnapshot(
  member: Member,
  log: Logger,
  call: grpc.ServerWritableStream<{ from: string; minIndex: number }, object>,
): Promise<void> {
  const { from, minIndex } = call.request;
  let snapshot: ReturnType<typeof latestSnapshot>;
  try {
    snapshot = latestSnapshot(member.snapshotsDir());
  } catch (err) {
    // The handler runs detached, so a throw here would end the process.
    log.warn({ peerId: from, err: (err as Error).message }, 'listing snapshots for a rebuilding peer failed');
    failStream(call, grpc.status.INTERNAL, `listing snapshots failed: ${(err as Error).message}`);
    return;
  }
  if (!snapshot || snapshot.meta.index < minIndex) {
    member.requestSnapshot();
    log.info({ peerId: from, minIndex, newestFileIndex: snapshot?.meta.index ?? 0 }, 'no snapshot new enough for a peer; taking one');
    failStream(call, grpc.status.FAILED_PRECONDITION, `no snapshot at or above index ${minIndex} yet; retry shortly`);
    return;
  }
  log.info({ peerId: from, snapshotIndex: snapshot.meta.index, bytes: snapshot.bytes }, 'sending snapshot to a rebuilding peer');
  const header = { from: member.id, term: 0, index: snapshot.meta.index, snapshotTerm: snapshot.meta.term, sha256: snapshot.sha256, totalBytes: snapshot.bytes };
  let first = true;
  const release = member.holdCompaction(snapshot.meta.index);
  try {
    for await (const data of snapshotChunks(snapshot.path, fetchChunkBytes)) {
      if (call.cancelled) return;
      const chunk = first ? { ...header, data } : { data };
      first = false;
      if (!call.write(chunk)) await waitForDrain(call);
    }
    if (first) call.write({ ...header, data: Buffer.alloc(0) });
    call.end();
  } catch (err) {
    log.warn({ peerId: from, err: (err as Error).message }, 'sending snapshot to a rebuilding peer failed');
    failStream(call, grpc.status.INTERNAL, `sending snapshot ${snapshot.meta.index} failed: ${(err as Error).message}`);
  } finally {
    release();
  }
}

