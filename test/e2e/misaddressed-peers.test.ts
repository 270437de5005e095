// Members log peer messages they drop because the sender's --peers is wrong:
// ids mapped to each other's addresses, or a member missing from --peers.
// Invalid peer frames are logged too, once per stream and interval.
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadReplogPackage } from '../../src/client/proto';
import { cliPath, freePorts, memberNodeFlags } from '../../src/cluster/local-cluster';
import { connect, fastTimingArgs, startCluster, waitFor, waitForLeader, type TestCluster } from './harness';

let tc: TestCluster | null = null;
let stranger: ChildProcess | null = null;

test.after.each(async () => {
  stranger?.kill('SIGKILL');
  stranger = null;
  await tc?.close();
  tc = null;
});

/** Polls the members' log files until one contains `pattern`, for up to 10 s; returns the matching line. */
async function waitForLogLine(current: TestCluster, ids: readonly string[], pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    for (const id of ids) {
      const logFile = current.cluster.member(id).logFile;
      const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      const line = log.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return line;
    }
    if (Date.now() > deadline) throw new Error(`no log line of ${ids.join(', ')} matches ${pattern}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('swapped peer addresses are logged', async () => {
  tc = await startCluster();
  await waitForLeader(tc.cluster);
  await tc.cluster.stopMember('n3', 'SIGKILL');
  const address = (id: string): string => tc!.cluster.member(id).grpc;
  tc.cluster.startMember('n3', ['--peers', `n1=${address('n2')},n2=${address('n1')},n3=${address('n3')}`]);
  const line = await waitForLogLine(tc, ['n1', 'n2'], /dropped a peer message for n[12], but this member is n[12]/);
  const entry = JSON.parse(line) as Record<string, unknown>;
  assert.is(entry['level'], 40, 'a warning');
  assert.is(entry['from'], 'n3');
  assert.is.not(entry['to'], entry['id'], 'addressed to the other member');
  assert.match(String(entry['msg']), /check the --peers addresses of n3$/);

  // An append to n3 goes to the leader's id at the other member's address.
  const leader = await waitForLeader(tc.cluster, ['n1', 'n2']);
  const client = connect(tc.cluster.member('n3').grpc);
  try {
    let error: unknown = null;
    await waitFor('n3 to know the leader', async () => {
      try {
        await client.append(`swapped-${Date.now()}`, 5000);
        return false;
      } catch (err) {
        error = err;
        return /forwarded append reached/.test((err as Error).message);
      }
    });
    const other = leader.id === 'n1' ? 'n2' : 'n1';
    assert.match((error as Error).message, new RegExp(`forwarded append reached ${other}, which does not lead \\(leader: ${leader.id}\\)`));
    assert.match((error as Error).message, /check the --peers addresses of the member that forwarded it/);
  } finally {
    client.close();
  }
});

test('member outside --peers is logged', async () => {
  tc = await startCluster();
  await waitForLeader(tc.cluster);
  const [grpcPort, httpPort] = await freePorts(2);
  const dataDir = path.join(tc.dir, 'n4');
  const args = [
    ...memberNodeFlags, cliPath, 'node', '--id', 'n4', '--data', dataDir,
    '--grpc', `127.0.0.1:${grpcPort}`, '--http', `127.0.0.1:${httpPort}`,
    '--peers', `${tc.cluster.peersFlag},n4=127.0.0.1:${grpcPort}`, ...fastTimingArgs,
  ];
  stranger = spawn(process.execPath, args, { stdio: 'ignore' });
  const line = await waitForLogLine(tc, ['n1', 'n2', 'n3'], /dropped a peer message from n4, which is not in --peers/);
  const entry = JSON.parse(line) as Record<string, unknown>;
  assert.is(entry['level'], 40, 'a warning');
  assert.is(entry['from'], 'n4');
  const leader = await waitForLeader(tc.cluster);
  assert.ok(['n1', 'n2', 'n3'].includes(leader.id), 'the cluster keeps its leader among its members');
});

test('invalid frames warn once per interval', async () => {
  tc = await startCluster({ size: 1 });
  const member = tc.cluster.member('n1');
  const Peer = loadReplogPackage()['Peer'] as grpc.ServiceClientConstructor;
  const client = new Peer(member.grpc, grpc.credentials.createInsecure());
  try {
    const stream = (client as unknown as { Raft(callback: () => void): grpc.ClientWritableStream<{ payload: Buffer }> }).Raft(() => undefined);
    // The msgpack encoding of the number 1 is no list of messages.
    for (let i = 0; i < 50; i++) stream.write({ payload: Buffer.from([0x01]) });
    await waitForLogLine(tc, ['n1'], /dropped an invalid peer frame/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const lines = fs.readFileSync(member.logFile, 'utf8').split('\n').filter((l) => l.includes('dropped an invalid peer frame'));
    assert.is(lines.length, 1, 'one warning for 50 frames');
    assert.is((JSON.parse(lines[0]!) as Record<string, unknown>)['dropped'], 1, 'the first frame warns at once');
    stream.end();
  } finally {
    client.close();
  }
});

test.run();
