// HAProxy checks GET /readyz?lag=1000 on each member, so a member that still
// serves but has no leader leaves the rotation, and comes back once a
// leader is elected. /readyz takes `lag`, the committed entries a ready
// member may have left to apply, and rejects an invalid one with 400.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IngestClient } from '../../src/client';
import { appendMany, connect, startCluster, waitFor, waitForLeader, type TestCluster } from './harness';

let tc: TestCluster;
let client: IngestClient | undefined;

test.after(async () => {
  client?.close();
  await tc?.close();
});

/** Returns HAProxy's log from character `from` on. It has a line for each server state change. */
function haproxyLog(from = 0): string {
  try {
    return fs.readFileSync(path.join(tc.dir, 'haproxy.log'), 'utf8').slice(from);
  } catch {
    return '';
  }
}

/** Returns the state HAProxy last logged for a member: DOWN, UP, or null before any change. */
function serverState(id: string): string | null {
  const states = [...haproxyLog().matchAll(new RegExp(`^Server replog_members/${id} is (UP|DOWN)`, 'gm'))];
  return states.at(-1)?.[1] ?? null;
}

test('readyz takes an entry lag', async () => {
  tc = await startCluster({ size: 3, haproxy: true });
  await waitForLeader(tc.cluster);
  const http = tc.cluster.members[0]!.http;
  const cases: [string, number][] = [
    ['/readyz?lag=0', 200],
    ['/readyz?lag=1000', 200],
    ['/readyz?lag=1000000000', 200],
    ['/readyz?lag=1000000001', 400],
    ['/readyz?lag=-1', 400],
    ['/readyz?lag=ten', 400],
    ['/readyz?lag=', 400],
  ];
  await waitFor('member 1 ready', async () => (await fetch(`http://${http}/readyz`)).status === 200);
  for (const [url, status] of cases) {
    const response = await fetch(`http://${http}${url}`);
    const body = (await response.json()) as { error?: string };
    assert.is(response.status, status, `${url}: ${JSON.stringify(body)}`);
    if (status === 400) assert.match(body.error ?? '', /^invalid lag/, `${url} names the value`);
  }
});

test('leaderless member leaves rotation', async () => {
  const leader = await waitForLeader(tc.cluster);
  // Members that did not listen yet at HAProxy's first checks are DOWN until a good one.
  await waitFor('every member in rotation', async () => tc.cluster.members.every((m) => serverState(m.id) !== 'DOWN'), 15_000);
  client = connect(tc.target);
  const before = await appendMany(client, 'before-', 20, 4);
  assert.is(before.acknowledged.size, 20, 'appends through HAProxy succeed');

  const survivor = tc.cluster.members.find((m) => m.id !== leader.id)!;
  const others = tc.cluster.members.filter((m) => m !== survivor);
  const killedAt = haproxyLog().length;
  for (const m of others) await tc.cluster.stopMember(m.id, 'SIGKILL');
  const down = `replog_members/${survivor.id} is DOWN`;
  await waitFor(`HAProxy logs "${down}"`, async () => haproxyLog(killedAt).includes(down), 15_000);
  assert.is((await fetch(`http://${survivor.http}/healthz`)).status, 200, 'the member still serves');
  const readyz = await fetch(`http://${survivor.http}/readyz?lag=1000`);
  assert.is(readyz.status, 503, 'the member is not ready');
  assert.equal(await readyz.json(), { ready: false, reason: 'no leader known' });

  const restartedAt = haproxyLog().length;
  for (const m of others) tc.cluster.startMember(m.id);
  await waitForLeader(tc.cluster);
  const up = `replog_members/${survivor.id} is UP`;
  await waitFor(`HAProxy logs "${up}"`, async () => haproxyLog(restartedAt).includes(up), 15_000);
  const after = await appendMany(client, 'after-', 20, 4);
  assert.is(after.acknowledged.size, 20, 'appends through HAProxy succeed again');
});

test.run();
