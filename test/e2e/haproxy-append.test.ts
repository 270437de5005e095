// 5,000 appends with duplicates through a real HAProxy in front of three real
// members: every member ends with the same messages, count and digest.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestStep, initialDigest } from '../../src/storage/digest';
import { appendMany, connect, readAll, startCluster, waitInSync, type TestCluster } from './harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster({ haproxy: true });
});

test.after(async () => {
  await tc.close();
});

test('5,000 appends with duplicates stay identical on every member', async () => {
  const client = connect(tc.target);
  const first = await appendMany(client, 'msg-', 4000, 64);
  assert.is(first.failed, 0, 'no append fails on a healthy cluster');
  assert.is(first.acknowledged.size, 4000);
  const indexes = new Set(first.acknowledged.values());
  assert.is(indexes.size, 4000, 'every new valueset gets its own index');

  // 1,000 repeats of stored valuesets: each reports the original index.
  for (let n = 0; n < 1000; n += 100) {
    const batch = Array.from({ length: 100 }, (_, k) => `msg-${(n + k) * 3}`);
    const replies = await Promise.all(batch.map((v) => client.append(v, 5000)));
    replies.forEach((reply, k) => {
      assert.ok(reply.duplicate, `${batch[k]} is reported as a duplicate`);
      assert.is(reply.index, first.acknowledged.get(batch[k]!), `${batch[k]} keeps its original index`);
    });
  }
  client.close();

  const ids = tc.cluster.members.map((m) => m.id);
  const synced = await waitInSync(tc.cluster, ids);
  for (const s of synced) assert.is(s.messageCount, 4000, `${s.id} stores each valueset once`);

  for (const m of tc.cluster.members) {
    const messages = await readAll(m.grpc);
    assert.is(messages.length, 4000, `${m.id} returns every message through Read`);
    let digest = initialDigest();
    for (const msg of messages) digest = digestStep(digest, msg.index, msg.valueset);
    assert.is(digest.toString('hex'), synced[0]!.digest, `${m.id}'s messages hash to the digest in /status`);
  }
});

test('read on the receiving member right after an append returns it', async () => {
  for (const m of tc.cluster.members) {
    const client = connect(m.grpc);
    const reply = await client.append(`read-your-write-${m.id}`, 5000);
    const found: string[] = [];
    for await (const msg of client.read(reply.index, 1, false)) found.push(msg.valueset);
    client.close();
    assert.equal(found, [`read-your-write-${m.id}`], `${m.id} has applied its own append before replying`);
  }
});

test('Peer calls through HAProxy are denied', async () => {
  const raw = new grpc.Client(tc.target, grpc.credentials.createInsecure());
  const identity = (bytes: Buffer): Buffer => bytes;
  const code = await new Promise<number>((resolve) => {
    const call = raw.makeServerStreamRequest('/replog.v1.Peer/FetchSnapshot', identity, identity, Buffer.alloc(0), { deadline: Date.now() + 5000 });
    call.on('data', () => undefined);
    call.on('error', (err: grpc.ServiceError) => resolve(err.code));
    call.on('end', () => resolve(grpc.status.OK));
  });
  raw.close();
  assert.is(code, grpc.status.PERMISSION_DENIED, 'HAProxy answers 403, which gRPC reads as PERMISSION_DENIED');
  const client = connect(tc.target);
  const reply = await client.append('after-a-denied-peer-call', 5000);
  client.close();
  assert.ok(reply.index > 0, 'Ingest calls still pass');
});

test('invalid valuesets are rejected with INVALID_ARGUMENT', async () => {
  const client = connect(tc.target);
  for (const [valueset, pattern] of [['', /empty/], ['x'.repeat(65537), /65537 UTF-8 bytes is over the limit of 65536/]] as const) {
    try {
      await client.append(valueset, 5000);
      assert.unreachable('append should fail');
    } catch (err) {
      const e = err as { code?: number; message: string };
      assert.is(e.code, 3, 'status is INVALID_ARGUMENT');
      assert.match(e.message, pattern);
    }
  }
  const max = await client.append('y'.repeat(65536), 5000);
  assert.ok(max.index > 0, 'a valueset of exactly 65,536 bytes is accepted');
  client.close();
});

test.run();
