import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { loadReplogPackage } from '../client/proto';
import { peerChannelOptions } from '../grpc/peer-link';
import { MessageStore } from '../storage/message-store';
import { SqliteRaftLog } from '../storage/raft-log';
import { fileSha256Sync, listSnapshots, SnapshotReceiver, snapshotsDirectory } from '../storage/snapshot-files';
import type { MemberConfig } from './config';

/** Pause between rounds of asking every peer for a snapshot. */
const fetchRetryMs = 1000;
/** Maximum duration of one snapshot download. */
const fetchDeadlineMs = 10 * 60 * 1000;
/** Idle time after which a download is cancelled and the next peer is asked. */
const fetchIdleMs = 30_000;

interface SnapshotChunkWire {
  readonly index: number;
  readonly snapshotTerm: number;
  readonly sha256: string;
  readonly totalBytes: number;
  readonly data: Buffer;
}

type FetchClient = grpc.Client & {
  FetchSnapshot(request: { from: string; minIndex: number }, options: grpc.CallOptions): grpc.ClientReadableStream<SnapshotChunkWire>;
};

/**
 * Returns the index that a rebuilt state must reach, or null when no rebuild
 * is needed. A rebuild is needed when the state database is behind the log
 * start and no verified local snapshot reaches the log start or the recorded
 * snapshot, whichever is higher. Applying the log alone would leave a hole.
 */
export function stateGapIndex(dataDir: string, log: Logger): number | null {
  const raftLog = SqliteRaftLog.open(dataDir, log);
  const { logStart, snapshot } = raftLog.load();
  raftLog.close();
  // The recorded snapshot may lie above the log start when a trailing window
  // of entries is kept. NOTE: Member.restore() also starts from a state
  // between the two, so a snapshot at the log start would do, but this
  // requires one at the higher index and may fetch when it need not.
  const requiredIndex = Math.max(logStart.index, snapshot.index);
  if (requiredIndex === 0) return null;
  const store = MessageStore.open(dataDir, log);
  const appliedIndex = store.summary().appliedIndex;
  store.close();
  if (appliedIndex >= logStart.index) return null;
  const newest = listSnapshots(snapshotsDirectory(dataDir))[0];
  if (newest && newest.meta.index >= requiredIndex && fileSha256Sync(newest.path) === newest.sha256) return null;
  return requiredIndex;
}

/**
 * Downloads a snapshot at or above `minIndex` from any peer into the local
 * snapshots folder, asking every peer in turn until one has it.
 */
export async function fetchSnapshotFromPeers(config: MemberConfig, log: Logger, minIndex: number): Promise<void> {
  const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
  const peers = config.peers.filter((p) => p.id !== config.id);
  if (peers.length === 0) {
    throw new Error(
      `state database in ${config.dataDir} is missing the messages up to index ${minIndex}: the log starts after them, ` +
        'no local snapshot reaches them, and a member without peers cannot fetch one. ' +
        'Restore the data folder from a backup, or start with an empty --data folder and lose them',
    );
  }
  log.warn({ minIndex }, 'state database is behind the log start and no local snapshot covers it; fetching one from a peer');
  for (let round = 1; ; round++) {
    for (const peer of peers) {
      const client = new Peer(peer.address, grpc.credentials.createInsecure(), peerChannelOptions) as unknown as FetchClient;
      try {
        const filePath = await fetchFrom(client, config, minIndex);
        log.info({ peerId: peer.id, path: filePath }, 'fetched snapshot from a peer');
        return;
      } catch (err) {
        if (round === 1 || round % 30 === 0) log.warn({ peerId: peer.id, round, err: (err as Error).message }, 'fetching snapshot failed');
      } finally {
        client.close();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, fetchRetryMs));
  }
}

function fetchFrom(client: FetchClient, config: MemberConfig, minIndex: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const call = client.FetchSnapshot({ from: config.id, minIndex }, { deadline: Date.now() + fetchDeadlineMs });
    let receiver: SnapshotReceiver | null = null;
    let idle: NodeJS.Timeout | undefined;
    const watchIdle = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        reject(new Error(`timed out after ${fetchIdleMs} ms without data from the peer`));
        call.cancel();
      }, fetchIdleMs);
    };
    watchIdle();
    call.on('data', (chunk: SnapshotChunkWire) => {
      watchIdle();
      try {
        receiver ??= new SnapshotReceiver(
          snapshotsDirectory(config.dataDir),
          { index: chunk.index, term: chunk.snapshotTerm },
          chunk.sha256,
          chunk.totalBytes,
        );
        receiver.write(chunk.data);
      } catch (err) {
        call.cancel();
        reject(err);
      }
    });
    call.on('end', () => {
      clearTimeout(idle);
      try {
        if (!receiver) throw new Error('the peer sent no snapshot');
        resolve(receiver.finish());
      } catch (err) {
        reject(err);
      }
    });
    call.on('error', (err) => {
      clearTimeout(idle);
      receiver?.abort();
      reject(err);
    });
  });
}
