// Overload on real members. An append past a member's bound fails with
// RESOURCE_EXHAUSTED and gRPC's trailer grpc-retry-pushback-ms, from both of
// the member's Append handlers, while a request too large gets the same code
// without the trailer. `replog send` retries overload until appends commit.
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client';
import { cliPath } from '../../src/cluster/local-cluster';
import { connect, fetchStatus, waitFor, waitForLeader, startCluster, type TestCluster } from './harness';

let tc: TestCluster;

/** Appends in progress that each member takes before it rejects more. */
const pendingMax = 4;

test.before(async () => {
  tc = await startCluster({ memberArgs: ['--pending-appends-max', String(pendingMax), '--append-timeout-ms', '20000'] });
});

test.after(async () => {
  for (const m of tc.cluster.members) tc.cluster.resumeMember(m.id);
  await tc.close();
});

interface RawAppendClient {
  Append(
    request: { valueset: string },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null) => void,
  ): grpc.ClientUnaryCall;
  close(): void;
}

/** Returns a grpc-js client of `address` without replog's client library, so the trailers stay visible. */
function rawClient(address: string, options: grpc.ChannelOptions = {}): RawAppendClient {
  const Ingest = loadReplogPackage()['Ingest'] as grpc.ServiceClientConstructor;
  return new Ingest(address, grpc.credentials.createInsecure(), options) as unknown as RawAppendClient;
}

/** Sends one append and resolves with its error, or null when it succeeded. */
function appendError(client: RawAppendClient, valueset: string): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    client.Append({ valueset }, { deadline: Date.now() + 15_000 }, (error) => resolve(error));
  });
}

async function pendingAppends(httpAddress: string): Promise<number> {
  const metrics = await (await fetch(`http://${httpAddress}/metrics`)).text();
  return Number(/^replog_pending_appends (\d+)$/m.exec(metrics)?.[1] ?? 0);
}

async function overloadRejections(httpAddress: string): Promise<number> {
  const metrics = await (await fetch(`http://${httpAddress}/metrics`)).text();
  return Number(/^replog_proposals_failed_total\{code="RESOURCE_EXHAUSTED"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
}

/** Pauses every member but `id`, so that appends on it wait for a quorum. */
function isolate(id: string): void {
  for (const m of tc.cluster.members) if (m.id !== id) tc.cluster.pauseMember(m.id);
}

function resumeAll(): void {
  for (const m of tc.cluster.members) tc.cluster.resumeMember(m.id);
}

test('overload requests a pause', async () => {
  const leader = await waitForLeader(tc.cluster);
  const member = tc.cluster.member(leader.id);
  isolate(leader.id);
  const plain = rawClient(member.grpc);
  // gzip sends the calls to grpc-js's handler instead of the member's own.
  const gzip = rawClient(member.grpc, { 'grpc.default_compression_algorithm': 2 });
  try {
    const waiting = Array.from({ length: pendingMax }, (_, i) => appendError(plain, `pushback-waiting-${i}`));
    await waitFor('the bound to fill', async () => (await pendingAppends(member.http)) >= pendingMax);

    const rejected = await appendError(plain, 'pushback-plain');
    assert.is(rejected?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(rejected?.metadata.get('grpc-retry-pushback-ms'), ['100'], 'the member requests 100 ms');

    const rejectedGzip = await appendError(gzip, 'pushback-gzip');
    assert.is(rejectedGzip?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(rejectedGzip?.metadata.get('grpc-retry-pushback-ms'), ['100'], 'grpc-js sends the trailer too');

    const library = connect(member.grpc);
    const viaLibrary = await library.append('pushback-library', 15_000).then(() => null, (err: unknown) => err);
    library.close();
    assert.is((viaLibrary as { retryPushbackMs?: number }).retryPushbackMs, 100, 'the client library reads the pause');

    const tooLarge = await appendError(plain, 'x'.repeat(2 * 1024 * 1024));
    assert.is(tooLarge?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(tooLarge?.metadata.get('grpc-retry-pushback-ms'), [], 'a request too large gets no pause');

    resumeAll();
    for (const error of await Promise.all(waiting)) {
      assert.ok(error === null || error.code === grpc.status.UNAVAILABLE, `a waiting append ends: ${error?.message}`);
    }
  } finally {
    resumeAll();
    plain.close();
    gzip.close();
  }
});

test('follower names overloaded leader', async () => {
  const leader = await waitForLeader(tc.cluster);
  const followerId = tc.cluster.members.find((m) => m.id !== leader.id)!.id;
  // The follower gets room for all 20 appends, so only the leader's bound rejects some.
  await tc.cluster.stopMember(followerId);
  tc.cluster.startMember(followerId, ['--pending-appends-max', '1000']);
  const follower = tc.cluster.member(followerId);
  await waitFor('the restarted follower to know the leader', async () => (await fetchStatus(follower.http))?.leaderId === leader.id);
  const client = rawClient(follower.grpc);
  try {
    const errors = await Promise.all(Array.from({ length: 20 }, (_, i) => appendError(client, `forwarded-overload-${i}`)));
    const rejected = errors.filter((e) => e?.code === grpc.status.RESOURCE_EXHAUSTED);
    assert.ok(rejected.length > 0, `the leader rejects some of 20 forwarded appends (codes: ${errors.map((e) => e?.code ?? 0).join(',')})`);
    assert.match(rejected[0]!.details, new RegExp(`^leader ${leader.id}: overloaded: `));
    assert.equal(rejected[0]!.metadata.get('grpc-retry-pushback-ms'), ['100'], 'the follower keeps the pause');
  } finally {
    client.close();
  }
});

/**
 * Runs `replog send` with `extraArgs` against the leader while the other
 * members are paused, resumes them once the leader rejected an append for
 * overload, and checks that every valueset was stored without an error.
 */
async function sendThroughOverload(extraArgs: readonly string[]): Promise<void> {
  const leader = await waitForLeader(tc.cluster);
  const member = tc.cluster.member(leader.id);
  const rejectionsBefore = await overloadRejections(member.http);
  const before = (await fetchStatus(member.http))!.messageCount;
  isolate(leader.id);
  const count = 12;
  const child = spawn(
    process.execPath,
    [cliPath, 'send', '--target', member.grpc, '--count', String(count), '--concurrency', '8', '--retries', '30', '--json', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    await waitFor('send to meet the bound', async () => (await overloadRejections(member.http)) > rejectionsBefore);
  } finally {
    resumeAll();
  }
  assert.is(await exited, 0, `send exits 0 (stderr: ${stderr})`);
  const summary = JSON.parse(stdout) as { stored: number; errorCount: number; retries: number };
  assert.is(summary.errorCount, 0, `no append fails: ${stdout}`);
  assert.ok(summary.retries >= 1, `overloaded appends were retried: ${stdout}`);
  assert.is(summary.stored, count);
  const status = await waitFor('the appends to be applied', async () => {
    const s = await fetchStatus(member.http);
    return s !== null && s.messageCount >= before + count ? s : null;
  });
  assert.is(status.messageCount, before + count);
}

test('send retries overload until commit', async () => {
  await sendThroughOverload([]);
});

test('send --stream retries overload', async () => {
  await sendThroughOverload(['--stream']);
});

test.run();
