// A cluster of one keeps no copy of its state database: a snapshot fsyncs the
// database and compacts the log, and a snapshot file is saved only for a
// peer. When that database is deleted while the member is down, the log no
// longer has the early messages and there is no peer to fetch them from.
// The member must exit with status 1 and an error naming the folder, instead
// of waiting for a peer forever or serving a store with a hole in it.
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stateDirectory } from '../../src/storage/state-dir';
import { appendMany, connect, fetchStatus, waitFor, type TestCluster } from '../e2e/harness';
import { exitOf, startFaultCluster } from './fault-harness';

const memberArgs = ['--snapshot-threshold', '100', '--snapshot-keep-entries', '10'];
const exitTimeoutMs = 20_000;

let tc: TestCluster;

test.before(async () => {
  tc = await startFaultCluster({ size: 1, memberArgs });
});

test.after(async () => {
  await tc.close();
});

test('lone member without state exits', async () => {
  const member = tc.cluster.members[0]!;
  const client = connect(member.grpc);
  const load = await appendMany(client, 'lone-', 300, 8);
  client.close();
  assert.is(load.failed, 0, 'appends succeed');
  await waitFor('a snapshot', async () => ((await fetchStatus(member.http))?.snapshotIndex ?? 0) > 0);
  await tc.cluster.stopMember(member.id);
  fs.rmSync(stateDirectory(member.dataDir), { recursive: true, force: true });

  const offset = fs.statSync(member.logFile).size;
  const child = tc.cluster.startMember(member.id);
  const timer = setTimeout(() => child.kill('SIGKILL'), exitTimeoutMs);
  const code = await exitOf(child);
  clearTimeout(timer);
  const output = fs.readFileSync(member.logFile).subarray(offset).toString('utf8');
  assert.is(code, 1, `the member exits with status 1, output:\n${output.slice(-1500)}`);
  assert.match(output, /a member without peers cannot fetch one/);
  assert.match(output, member.dataDir, 'the message names the data folder');
});

test.run();
