// The Raft stream of a PeerLink caps the bytes it queues for a peer that
// does not read, and queues nothing for a peer it is not connected to. The
// first peer is a real member process, stopped with SIGSTOP after it started,
// so its socket buffers fill and writes wait.
import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { PeerLink, peerChannelOptions } from '../../src/grpc/peer-link';
import { sleep, startCluster, type TestCluster } from '../e2e/harness';

let tc: TestCluster;

/** Returns a pino logger at `level` and the JSON lines it writes. */
function capturedLog(level: string): { lines: string[]; log: pino.Logger } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, log: pino({ level }, sink) };
}

test.before(async () => {
  tc = await startCluster({ size: 1 });
});

test.after(async () => {
  tc.cluster.resumeMember('n1');
  await tc.close();
});

const capBytes = 32 * 1024 * 1024;

test('Raft stream drops frames above its byte cap', async () => {
  const { lines, log } = capturedLog('warn');
  const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
  const client = new Peer(tc.cluster.member('n1').grpc, grpc.credentials.createInsecure(), peerChannelOptions);
  const link = new PeerLink('n1', client as unknown as ConstructorParameters<typeof PeerLink>[1], log, capBytes);

  // One frame while the member runs opens the stream.
  link.sendFrame(Buffer.alloc(16));
  await sleep(300);
  tc.cluster.pauseMember('n1');

  // 128 frames of 512 KiB: the socket buffers take a few MiB, and the link
  // queues up to its cap of 32 MiB, so the last frames are dropped.
  const frame = Buffer.alloc(512 * 1024);
  for (let i = 0; i < 128; i++) {
    link.sendFrame(frame);
    await sleep(5);
  }
  await sleep(200);
  const warnings = lines.filter((line) => line.includes('peer stream is full; dropping Raft frames'));
  assert.ok(warnings.length > 0, `a warning about dropped frames; the log had: ${lines.join('')}`);
  const queued = (JSON.parse(warnings[0]!) as { queuedBytes: number }).queuedBytes;
  assert.ok(queued <= capBytes, `queued ${queued} bytes, at most 32 MiB`);
  assert.ok(queued > 16 * 1024 * 1024, `queued ${queued} bytes before dropping`);
  client.close();
});

test('frames for an unconnected peer are not queued', async () => {
  // A TCP listener that accepts and never completes the HTTP/2 handshake, as a
  // hung peer does: the channel stays connecting, and calls wait in grpc-js.
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as net.AddressInfo).port;
  const { lines, log } = capturedLog('debug');
  const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
  const client = new Peer(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), peerChannelOptions);
  const link = new PeerLink('n9', client as unknown as ConstructorParameters<typeof PeerLink>[1], log, 4 * 1024 * 1024);
  const frame = Buffer.alloc(512 * 1024);
  for (let i = 0; i < 16; i++) {
    link.sendFrame(frame);
    await sleep(20);
  }
  assert.ok(lines.some((line) => line.includes('peer not connected; dropping Raft frames')), lines.join(''));
  assert.not.ok(lines.some((line) => line.includes('peer stream is full')), 'nothing was queued for the cap to reach');
  client.close();
  // Not awaited: a call left open by a failing run would keep the listener busy.
  silent.close();
  silent.unref();
  for (const socket of sockets) socket.destroy();
});

test.run();
