// One member's data folder is a small tmpfs that the test fills up while the
// member takes appends. The member must fail the appends in flight with
// UNAVAILABLE naming the disk problem and stop with exit status 1, a log
// line that names the file and a line on stderr with what to do next, rather
// than crash or go on with half-written state. The others keep taking appends
// and serving reads, and once space is freed and the member restarts, it
// catches up to the same digest.
// Run for a follower and for the leader on the full disk.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IngestClient } from '../../src/client';
import { connect, readAll, sleep, waitForLeader, waitInSync, type TestCluster } from '../e2e/harness';
import { after, exitOf, missingOn, recordAppends, startFaultCluster, startWatchdog, type RecordedLoad } from './fault-harness';
import { fillUp, mountTmpfs, probeMountSupport, removeLeftoverMounts, unmountIfMounted } from './small-disk';

const dirPrefix = 'replog-diskfull-';
// Large enough that, once the filler is removed, the restarted member has room
// for everything the others stored meanwhile (8 MiB ran out on a fast run).
const diskBytes = 64 * 1024 * 1024;
/** The member whose data folder is the small disk. */
const smallId = 'n3';
/** Valuesets of this size fill the last free pages quickly. */
const valuesetBytes = 2000;
const concurrency = 16;
/** Bound on the full member stopping once its disk is full, in milliseconds. */
const stopWithinMs = 20_000;
const fileLimitMs = 120_000;

let cluster: TestCluster | null = null;
let mountDir = '';
removeLeftoverMounts(os.tmpdir(), dirPrefix);
const mountError = probeMountSupport(os.tmpdir());

test.before.each(async () => {
  if (mountError !== null) return;
  cluster = await startFaultCluster({
    dirPrefix: `${dirPrefix}${process.pid}-`,
    haproxy: false,
    beforeStart: (cluster) => {
      mountDir = cluster.member(smallId).dataDir;
      mountTmpfs(mountDir, diskBytes);
    },
    afterStop: () => unmountIfMounted(mountDir),
  });
});

test.after.each(async () => {
  await cluster?.close();
  cluster = null;
});

/** Returns the running cluster, or null after printing why the test is skipped. */
function clusterOrSkip(): TestCluster | null {
  if (cluster === null) console.log(`skipped: mounting a tmpfs is not permitted here: ${mountError}`);
  return cluster;
}

startWatchdog('disk-full.test', fileLimitMs, () => {
  cluster?.cluster.processes.forEach((p) => p.kill('SIGKILL'));
  if (mountDir) unmountIfMounted(mountDir);
});

/** Makes `id` the leader (`shouldLead`) or a follower by restarting members. */
async function arrangeLeadership(tc: TestCluster, id: string, shouldLead: boolean): Promise<void> {
  for (;;) {
    const leader = await waitForLeader(tc.cluster);
    if ((leader.id === id) === shouldLead) return;
    const restart = shouldLead ? leader.id : id;
    await tc.cluster.stopMember(restart, 'SIGTERM');
    tc.cluster.startMember(restart);
    await sleep(500);
  }
}

function payload(prefix: string): string {
  return `${prefix}${'x'.repeat(valuesetBytes)}`;
}

/** Appends through `client` until `done`, with valuesets of about valuesetBytes bytes. */
function bigAppends(client: IngestClient, prefix: string, done: () => boolean): Promise<RecordedLoad> {
  return recordAppends(client, payload(prefix), { concurrency, done, deadlineMs: 5000 });
}

/** Collects the error messages of appends through `client` until `done`. */
async function appendErrors(client: IngestClient, prefix: string, done: () => boolean): Promise<{ load: RecordedLoad; messages: string[] }> {
  const messages: string[] = [];
  const wrapped: IngestClient = {
    ...client,
    append: (valueset, deadlineMs) =>
      client.append(valueset, deadlineMs).catch((err: Error) => {
        messages.push(err.message);
        throw err;
      }),
  };
  const load = await bigAppends(wrapped, prefix, done);
  return { load, messages };
}

async function fillAndCheck(tc: TestCluster, throughId: string): Promise<void> {
  const small = tc.cluster.member(smallId);
  const child = tc.cluster.processes.get(smallId)!;
  const healthy = tc.cluster.members.filter((m) => m.id !== smallId);
  const healthyClient = connect(healthy.map((m) => m.grpc).join(','));
  const warmup = await bigAppends(healthyClient, 'warm-', after(500));
  assert.is(warmup.errors.size, 0, 'appends succeed before the disk is full');
  // A write of the warm-up still in progress on the small disk would stop the
  // member before any append through it is in flight, so none could name the disk.
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), Math.max(0, ...warmup.acknowledged.values()));

  const filler = path.join(small.dataDir, 'filler');
  fillUp(filler);
  let exited = false;
  const exitCode = exitOf(child).then((code) => {
    exited = true;
    return code;
  });
  const throughClient = connect(tc.cluster.member(throughId).grpc);
  const stopAt = Date.now() + stopWithinMs;
  const full = await appendErrors(throughClient, 'full-', () => exited || Date.now() > stopAt);
  throughClient.close();
  assert.ok(exited, `${smallId} stops within ${stopWithinMs} ms of its disk filling up`);
  assert.is(await exitCode, 1, `${smallId} exits with status 1`);

  const fatalLines = fs.readFileSync(small.logFile, 'utf8').split('\n').filter((line) => line.includes('"level":60'));
  assert.ok(fatalLines.length > 0, `${smallId} logs a fatal line`);
  assert.ok(fatalLines[0]!.includes(small.dataDir), `${smallId}'s fatal line names the file in ${small.dataDir}: ${fatalLines[0]!.slice(0, 300)}`);
  const stderrLine = fs.readFileSync(small.logFile, 'utf8').split('\n').find((line) => line.startsWith('replog node: writing to disk failed: '));
  assert.ok(stderrLine?.includes(small.dataDir), `${smallId} writes a line to stderr that names the file in ${small.dataDir}: ${stderrLine}`);
  assert.ok(stderrLine?.includes('Free space or fix the disk'), `${smallId}'s stderr line says what to do: ${stderrLine}`);
  const diskMessage = full.messages.find((m) => m.includes('disk'));
  console.log(`${smallId} exited with status 1; an append through ${throughId} failed with: ${diskMessage}`);
  assert.ok(diskMessage, `an append in flight fails naming the disk: ${full.messages.slice(0, 3).join(' | ')}`);

  // The others keep taking appends and serving reads.
  await waitForLeader(tc.cluster, healthy.map((m) => m.id));
  const meanwhile = await bigAppends(healthyClient, 'meanwhile-', after(500));
  assert.is(meanwhile.errors.size, 0, `appends on the others succeed: ${JSON.stringify([...meanwhile.errors])}`);
  assert.ok((await readAll(healthy[0]!.grpc)).length > 0, 'reads on the others work');

  fs.rmSync(filler);
  tc.cluster.startMember(smallId);
  const acknowledged = new Map([...warmup.acknowledged, ...full.load.acknowledged, ...meanwhile.acknowledged]);
  await waitInSync(tc.cluster, tc.cluster.members.map((m) => m.id), Math.max(...acknowledged.values()));
  assert.equal(await missingOn(acknowledged, small.grpc), [], `${smallId} stores every acknowledged append after its restart`);
  healthyClient.close();
}

test('follower on a full disk stops cleanly and recovers', async () => {
  const tc = clusterOrSkip();
  if (!tc) return;
  await arrangeLeadership(tc, smallId, false);
  await fillAndCheck(tc, smallId);
});

test('leader on a full disk stops cleanly and recovers', async () => {
  const tc = clusterOrSkip();
  if (!tc) return;
  await arrangeLeadership(tc, smallId, true);
  const follower = tc.cluster.members.find((m) => m.id !== smallId)!;
  await fillAndCheck(tc, follower.id);
});

test.run();
