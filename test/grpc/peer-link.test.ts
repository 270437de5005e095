// The Raft stream of a PeerLink caps the bytes it queues for a peer that
// does not read. The peer here is a real member process, stopped with
// SIGSTOP after it started, so its socket buffers fill and writes wait.
import * as grpc from '@grpc/grpc-js';
import { Writable } from 'node:stream';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { PeerLink, peerChannelOptions } from '../../src/grpc/peer-link';
import { sleep, startCluster, type TestCluster } from '../e2e/harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ size: 1 });
});

test.after(async () => {
  tc.cluster.resumeMember('n1');
  await tc.close();
});

test('Raft stream drops frames above its byte cap', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = pino({ level: 'warn' }, sink);
  const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
  const client = new Peer(tc.cluster.member('n1').grpc, grpc.credentials.createInsecure(), peerChannelOptions);
  const link = new PeerLink('n1', client as unknown as ConstructorParameters<typeof PeerLink>[1], log);

  // One frame while the member runs opens the stream.
  link.sendFrame(Buffer.alloc(16));
  await sleep(300);
  tc.cluster.pauseMember('n1');

  // 64 frames of 1 MiB: the socket buffers take a few MiB, and the link
  // queues up to its 32 MiB cap, so the last frames are dropped.
  const frame = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < 64; i++) {
    link.sendFrame(frame);
    await sleep(5);
  }
  await sleep(200);
  const warnings = lines.filter((line) => line.includes('peer stream is full; dropping Raft frames'));
  assert.ok(warnings.length > 0, `a warning about dropped frames; the log had: ${lines.join('')}`);
  const queued = (JSON.parse(warnings[0]!) as { queuedBytes: number }).queuedBytes;
  assert.ok(queued <= 32 * 1024 * 1024, `queued ${queued} bytes, at most 32 MiB`);
  assert.ok(queued > 16 * 1024 * 1024, `queued ${queued} bytes before dropping`);
  client.close();
});

test.run();
