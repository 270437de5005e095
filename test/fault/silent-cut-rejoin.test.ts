// A follower is cut off so that its packets are lost without an error, as
// when a router between the members fails. The peers' pings drop its
// connections 8 to 13 s into the cut, and its new connection attempts hang in
// SYN-SENT: the kernel resends their SYN 1, 3, 7, 15 and 31 s after an
// attempt started. The heal comes 30 s into the cut, after the resend at
// 15 s and 9 to 14 s before the one at 31 s. Meanwhile the other two members
// store appends. After the heal the follower must be back in contact with the
// leader and apply those appends within a few seconds, not at the next SYN.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cliPath } from '../../src/cluster/local-cluster';
import { NamespaceNetwork, probeNamespaceSupport, removeLeftoverNamespaces } from '../../src/cluster/netns';
import type { MemberStatus } from '../../src/node/member';
import { fastTimingArgs, sleep } from '../e2e/harness';
import { namespaceRoot } from './nemesis-run';
import { PlacedCluster } from './placed-cluster';
import { namespacePlacement } from './placement';
import { ProbeAgent } from './probe-agent';

const ids = ['n1', 'n2', 'n3'];
/** Length of the cut, explained at the top of this file. */
const cutMs = 30_000;
/** Time the follower may take to apply the appends after the heal, below the 9 s before the next SYN. */
const rejoinLimitMs = 7_000;
const appendCount = 300;

let network: NamespaceNetwork | null = null;
let cluster: PlacedCluster | null = null;
let agent: ProbeAgent | null = null;
let dir = '';
let skipReason = '';

test.before(() => {
  const prefix = `${namespaceRoot}-${process.pid}`;
  removeLeftoverNamespaces(namespaceRoot);
  const support = probeNamespaceSupport(prefix);
  if (!support.available) {
    skipReason = support.reason;
    return;
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-silent-cut-'));
  network = new NamespaceNetwork(prefix, ids, 1 + (process.pid % 254));
  network.create();
  const placement = namespacePlacement(network);
  cluster = new PlacedCluster(placement, dir, fastTimingArgs);
  agent = ProbeAgent.start(placement.clientCommandPrefix);
  for (const id of ids) cluster.start(id);
});

test.after(async () => {
  agent?.close();
  await cluster?.killAll();
  network?.destroy();
  if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
});

/** Fetches /status of every member through the probe agent, by id. */
async function statuses(): Promise<Map<string, MemberStatus>> {
  const members = cluster!.placement.members;
  const replies = await agent!.statuses(members.map((m) => m.clientHttp));
  const result = new Map<string, MemberStatus>();
  replies.forEach((status, i) => {
    if (status) result.set(members[i]!.id, status);
  });
  return result;
}

/** Polls until `check` returns a value; throws naming `what` after `timeoutMs`. */
async function waitFor<T>(what: string, check: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const value = await check();
    if (value !== null) return value;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Runs `replog send` next to the clients and resolves with its exit status and output. */
function send(target: string, count: number): Promise<{ code: number | null; output: string }> {
  const prefix = cluster!.placement.clientCommandPrefix;
  const words = [...prefix, process.execPath, cliPath, 'send', '--target', target, '--count', String(count)];
  const child = spawn(words[0]!, words.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
}

test('follower rejoins soon after silent cut', async () => {
  if (skipReason !== '') {
    console.log(`skipped: network namespaces are not available here: ${skipReason}`);
    return;
  }
  const leader = await waitFor('a leader known to every member', async () => {
    const all = [...(await statuses()).values()];
    const found = all.find((s) => s.role === 'leader');
    return found && all.length === ids.length && all.every((s) => s.leaderId === found.id) ? found : null;
  }, 20_000);
  const follower = ids.find((id) => id !== leader.id)!;

  network!.dropFrom(follower);
  const cutAtMs = performance.now();
  const sent = await send(cluster!.member(leader.id).clientGrpc, appendCount);
  assert.is(sent.code, 0, `send to ${leader.id} during the cut:\n${sent.output}`);
  await sleep(cutMs - (performance.now() - cutAtMs));
  const target = (await statuses()).get(leader.id)!.commitIndex;

  network!.heal();
  const healedAtMs = performance.now();
  const caughtUp = await waitFor(`${follower} to apply index ${target}`, async () => {
    const all = await statuses();
    const applied = all.get(follower)?.appliedIndex ?? 0;
    const seen = all.get(leader.id)?.peers.find((p) => p.id === follower)?.matchIndex ?? 0;
    return applied >= target && seen >= target ? performance.now() - healedAtMs : null;
  }, 60_000);
  console.log(`${follower} applied index ${target} ${Math.round(caughtUp)} ms after the heal`);

  assert.ok(caughtUp < rejoinLimitMs, `${follower} took ${Math.round(caughtUp)} ms after the heal, limit ${rejoinLimitMs} ms`);
});

test.run();
