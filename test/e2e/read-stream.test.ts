// Read on real members: from_index, limit, follow, and received_at_ms that is
// the leader's clock, stored in the entry, so equal on every member.
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StoredMessage } from '../../src/client';
import { loadReplogPackage } from '../../src/client/proto';
import { appendMany, connect, startCluster, waitInSync, type TestCluster } from './harness';

let tc: TestCluster;

test.before(async () => {
  tc = await startCluster();
});

test.after(async () => {
  await tc.close();
});

async function collect(target: string, fromIndex: number, limit: number): Promise<StoredMessage[]> {
  const client = connect(target);
  const messages: StoredMessage[] = [];
  for await (const m of client.read(fromIndex, limit, false)) messages.push(m);
  client.close();
  return messages;
}

test('read honours from_index and limit', async () => {
  const client = connect(tc.target);
  const load = await appendMany(client, 'page-', 50, 8);
  client.close();
  assert.is(load.failed, 0);
  const all = await collect(tc.cluster.members[0]!.grpc, 0, 0);
  assert.is(all.length, 50, 'limit 0 means no limit');
  const fromIndex = all[10]!.index;
  const page = await collect(tc.cluster.members[0]!.grpc, fromIndex, 5);
  assert.is(page.length, 5, 'limit caps the page');
  assert.is(page[0]!.index, fromIndex, 'from_index is inclusive');
  for (let i = 1; i < page.length; i++) assert.ok(page[i]!.index > page[i - 1]!.index, 'indexes ascend');
});

test('received_at_ms is the same on every member', async () => {
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id));
  const reads = await Promise.all(tc.cluster.members.map((m) => collect(m.grpc, 0, 0)));
  for (const other of reads.slice(1)) assert.equal(other, reads[0], 'members return identical messages');
  assert.ok(reads[0]!.every((m) => m.receivedAtMs > 1_600_000_000_000), 'received_at_ms is a wall-clock time');
});

/** Sends one Read with from_index as a decimal string, which a number cannot hold exactly, and returns its status. */
function readStatus(target: string, fromIndex: string): Promise<grpc.StatusObject> {
  const Ingest = loadReplogPackage()['Ingest'] as grpc.ServiceClientConstructor;
  const client = new Ingest(target, grpc.credentials.createInsecure());
  const call = client.makeServerStreamRequest(
    '/replog.v1.Ingest/Read',
    (request: object) => Buffer.from(Ingest.service['Read']!.requestSerialize(request)),
    (bytes: Buffer) => bytes,
    { fromIndex, limit: 0, follow: false },
    { deadline: Date.now() + 5000 },
  );
  return new Promise((resolve) => {
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => {
      client.close();
      resolve(status);
    });
  });
}

test('read rejects from_index above 2^53 - 1', async () => {
  const status = await readStatus(tc.cluster.members[0]!.grpc, '18446744073709551615');
  assert.is(status.code, grpc.status.INVALID_ARGUMENT, status.details);
  assert.match(status.details, /invalid from_index: above the maximum of 9007199254740991/);
  assert.not.match(status.details, /18446744073709552000/, 'the rounded value is not quoted');
});

test('follow streams messages as they are applied', async () => {
  const follower = tc.cluster.members[1]!;
  const reader = connect(follower.grpc);
  const seen: string[] = [];
  const done = (async () => {
    for await (const m of reader.read(0, 0, true)) {
      if (m.valueset.startsWith('live-')) seen.push(m.valueset);
      if (seen.length === 20) break;
    }
  })();
  const writer = connect(tc.target);
  const load = await appendMany(writer, 'live-', 20, 4);
  writer.close();
  assert.is(load.failed, 0);
  await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error('follow timed out')), 10_000))]);
  reader.close();
  assert.is(seen.length, 20, 'every new message arrives on the open stream');
});

test.run();
