import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Member } from '../node/member';
import { SnapshotReceiver, snapshotsDirectory } from '../storage/snapshot-files';
import { toReplogError } from './errors';
import { decodeMessages } from './peer-codec';

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

/** Handlers of the internal Peer service, which members call on each other. */
export function peerServiceHandlers(member: Member, log: Logger): grpc.UntypedServiceImplementation {
  return {
    Raft: (call: grpc.ServerReadableStream<{ payload: Buffer }, object>, callback: grpc.sendUnaryData<object>) => {
      call.on('data', (frame: { payload: Buffer }) => {
        try {
          member.receive(decodeMessages(frame.payload));
        } catch (err) {
          log.warn({ err: (err as Error).message, peer: call.getPeer() }, 'dropped an invalid peer frame');
        }
      });
      call.on('end', () => callback(null, {}));
      call.on('error', () => undefined);
    },
    Forward: (call: grpc.ServerDuplexStream<ForwardBatchWire, object>) => handleForward(member, call),
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
      member.receiveSnapshot(header.from, header.term, { index: header.index, term: header.snapshotTerm }, filePath);
      callback(null, { ok: true, error: '' });
    } catch (err) {
      fail((err as Error).message);
    }
  });
  call.on('error', (err) => {
    receiver?.abort();
    log.warn({ err: err.message }, 'snapshot stream failed');
  });
}
