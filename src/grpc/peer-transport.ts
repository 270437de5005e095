import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { loadReplogPackage } from '../client/proto';
import { dataBytes } from '../consensus/log';
import type { Message } from '../consensus/types';
import type { PeerAddress } from '../node/config';
import type { Member, MemberTransport } from '../node/member';
import type { AppendResult } from '../node/waiters';
import { fileSha256, snapshotChunks, type LocalSnapshot } from '../storage/snapshot-files';
import { errors } from './errors';
import { splitBySize } from '../util/split-by-size';
import { encodeMessages } from './peer-codec';
import { PeerLink, peerChannelOptions, raftStreamBufferedBytesDefault } from './peer-link';

/** Interval of the check for peer connections that hang while connecting. */
const connectionCheckMs = 500;
/** Size of one InstallSnapshot data chunk, well below grpcMessageBytesMax; memory per transfer is about this much. */
const snapshotChunkBytes = 256 * 1024;

/** The receiving peer read the whole snapshot and rejected it, e.g. for a SHA-256 mismatch. */
class SnapshotRejectedError extends Error {
  override readonly name = 'SnapshotRejectedError';
}

/**
 * Outbound member-to-member traffic: Raft messages grouped into one frame per
 * peer per Ready, forwarded appends, and snapshot transfers.
 */
export class PeerTransport implements MemberTransport {
  private readonly links = new Map<string, PeerLink>();
  private readonly snapshotsSending = new Set<string>();
  /** Followers that need a snapshot while the member saves the file, with the term they need it in. */
  private readonly waitingForSnapshot = new Map<string, number>();
  private member: Member | null = null;
  /** Runs PeerLink.checkConnection() on every link. */
  private readonly connectionTimer: NodeJS.Timeout;

  constructor(
    selfId: string,
    peers: readonly PeerAddress[],
    private readonly log: Logger,
  ) {
    const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
    type PeerClient = ConstructorParameters<typeof PeerLink>[1];
    for (const peer of peers) {
      if (peer.id === selfId) continue;
      const newClient = (): PeerClient =>
        new Peer(peer.address, grpc.credentials.createInsecure(), peerChannelOptions) as unknown as PeerClient;
      this.links.set(peer.id, new PeerLink(peer.id, newClient(), log, raftStreamBufferedBytesDefault, newClient));
    }
    this.connectionTimer = setInterval(() => {
      const nowMs = performance.now();
      for (const link of this.links.values()) link.checkConnection(nowMs);
    }, connectionCheckMs);
    this.connectionTimer.unref();
  }

  attach(member: Member): void {
    this.member = member;
    // Sends the new file at once instead of at the core's next retry, which
    // comes an election timeout after the follower first needed it.
    member.on('snapshotSaved', () => {
      const waiting = [...this.waitingForSnapshot];
      this.waitingForSnapshot.clear();
      const current = member.status();
      for (const [to, term] of waiting) {
        if (current.role === 'leader' && current.term === term) this.sendSnapshot(to, term);
      }
    });
  }

  send(messages: readonly Message[]): void {
    const byPeer = new Map<string, Message[]>();
    for (const message of messages) {
      const list = byPeer.get(message.to);
      if (list) list.push(message);
      else byPeer.set(message.to, [message]);
    }
    for (const [peerId, list] of byPeer) {
      const link = this.links.get(peerId);
      if (!link) continue;
      for (const group of splitIntoFrames(list)) link.sendFrame(encodeMessages(group));
    }
  }

  forward(leaderId: string, valueset: string): Promise<AppendResult> {
    const link = this.links.get(leaderId);
    if (!link) return Promise.reject(errors.forwardFailed(leaderId, 'the leader is not in --peers'));
    return link.forward(valueset);
  }

  abandonForwards(leaderId: string): void {
    this.links.get(leaderId)?.abandonForwards('it no longer leads');
  }

  /**
   * Streams the newest usable snapshot file to `to`, unless a transfer to it
   * is running. With no usable file, the member saves one, and the transport
   * sends it once it is saved.
   */
  sendSnapshot(to: string, term: number): void {
    const link = this.links.get(to);
    if (!link || !this.member || this.snapshotsSending.has(to)) return;
    const saving = this.member.savingSnapshot;
    const snapshot = this.member.snapshotToSend();
    if (!snapshot) {
      this.waitingForSnapshot.set(to, term);
      const fields = { peerId: to, snapshotIndex: this.member.status().snapshotIndex };
      if (saving) this.log.debug(fields, 'follower needs a snapshot, file still being saved');
      else this.log.info(fields, 'follower needs a snapshot, saving a snapshot file');
      return;
    }
    this.snapshotsSending.add(to);
    const release = this.member.holdCompaction(snapshot.meta.index);
    this.streamSnapshot(link, term, snapshot)
      .then(() => {
        this.member?.snapshotDelivered(to, snapshot.meta.index);
        this.member?.metrics.snapshotsSent.inc({ result: 'ok' });
      })
      .catch(async (err: Error) => {
        this.member?.metrics.snapshotsSent.inc({ result: 'failed' });
        this.log.warn({ peerId: to, err: err.message }, 'sending snapshot failed');
        if (err instanceof SnapshotRejectedError) await this.checkLocalSnapshot(snapshot);
      })
      .finally(() => {
        release();
        this.snapshotsSending.delete(to);
      });
  }

  private async streamSnapshot(link: PeerLink, term: number, snapshot: LocalSnapshot): Promise<void> {
    const member = this.member!;
    this.log.info({ peerId: link.peerId, snapshotIndex: snapshot.meta.index, bytes: snapshot.bytes }, 'sending snapshot');
    const header = {
      from: member.id,
      term,
      index: snapshot.meta.index,
      snapshotTerm: snapshot.meta.term,
      sha256: snapshot.sha256,
      totalBytes: snapshot.bytes,
    };
    await new Promise<void>((resolve, reject) => {
      const call = link.client.InstallSnapshot((err, ack) => {
        if (err) reject(err);
        else if (!ack?.ok) reject(new SnapshotRejectedError(ack?.error || 'rejected'));
        else resolve();
      });
      void this.writeChunks(call, header, snapshot.path).catch((err: Error) => {
        call.cancel();
        reject(err);
      });
    });
  }

  /**
   * Checks a snapshot that a peer rejected against its sidecar. A damaged
   * file would be sent again on every retry, so the member takes a new one.
   */
  private async checkLocalSnapshot(snapshot: LocalSnapshot): Promise<void> {
    let sha256: string;
    try {
      sha256 = await fileSha256(snapshot.path);
    } catch (err) {
      // Pruned meanwhile because a newer snapshot exists, which the next retry sends.
      this.log.debug({ err, path: snapshot.path }, 'checking a rejected snapshot failed');
      return;
    }
    if (sha256 === snapshot.sha256) return;
    this.log.error(
      { path: snapshot.path, sha256, expectedSha256: snapshot.sha256 },
      'local snapshot does not match its SHA-256 sidecar; taking a new one',
    );
    this.member?.requestSnapshot();
  }

  private async writeChunks(call: grpc.ClientWritableStream<object>, header: object, filePath: string): Promise<void> {
    // A call that ended early (the peer rejected it or went away) never emits
    // 'drain', so a wait also stops at the call's status, and the loop's exit
    // closes the file instead of leaving it to the garbage collector.
    const ended = new Promise<'ended'>((resolve) => call.once('status', () => resolve('ended')));
    let first = true;
    for await (const data of snapshotChunks(filePath, snapshotChunkBytes)) {
      const chunk = first ? { ...header, data } : { data };
      first = false;
      if (call.write(chunk)) continue;
      const drained = new Promise<'drained'>((resolve) => call.once('drain', () => resolve('drained')));
      if ((await Promise.race([drained, ended])) === 'ended') throw new Error('the peer ended the snapshot stream early');
    }
    if (first) call.write({ ...header, data: Buffer.alloc(0) });
    call.end();
  }

  close(): void {
    clearInterval(this.connectionTimer);
    for (const link of this.links.values()) link.close();
  }
}

/**
 * Estimated encoded bytes of one Raft frame before the next frame starts. One
 * Ready can carry 16 appends to a follower, each up to appendBytesMax of entry
 * data, which together exceed grpcMessageBytesMax, the gRPC message limit of
 * the receiving member.
 */
const frameBytesTarget = 512 * 1024;
/** Upper estimate of the msgpack bytes of one message or entry beside entry data: field names, numbers, headers. */
const encodingBytesEach = 64;

/** Splits one peer's messages, in order, into groups of about frameBytesTarget encoded bytes at most. */
export function splitIntoFrames(messages: readonly Message[]): Message[][] {
  return splitBySize(messages, encodedBytesEstimate, frameBytesTarget);
}

/** Returns an upper estimate of a message's encoded size. */
function encodedBytesEstimate(message: Message): number {
  if (message.type !== 'append') return encodingBytesEach;
  return encodingBytesEach * (1 + message.entries.length) + dataBytes(message.entries);
}
