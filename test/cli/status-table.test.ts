import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  allInSync,
  assessSync,
  formatStatusTable,
  formatSyncState,
  parseMemberStatus,
  type MemberProbe,
  type MemberStatus,
} from '../../src/cli/status-table';

const digestA = 'a'.repeat(64);
const digestB = 'b'.repeat(64);

function member(id: string, appliedIndex: number, messageCount: number, digest: string): MemberStatus {
  return {
    id,
    role: id === 'n1' ? 'leader' : 'follower',
    term: 3,
    leaderId: 'n1',
    commitIndex: appliedIndex,
    appliedIndex,
    lastLogIndex: appliedIndex,
    snapshotIndex: 0,
    messageCount,
    digest,
    peers: [],
  };
}

function reachable(status: MemberStatus): MemberProbe {
  return { address: `127.0.0.1:${6000 + Number(status.id.slice(1))}`, status };
}

const down: MemberProbe = { address: '127.0.0.1:6003', error: 'GET /status failed: ECONNREFUSED' };

test('identical members are all in sync', () => {
  const states = assessSync([
    reachable(member('n1', 1200, 1100, digestA)),
    reachable(member('n2', 1200, 1100, digestA)),
    reachable(member('n3', 1200, 1100, digestA)),
  ]);
  assert.equal(states.map(formatSyncState), ['yes', 'yes', 'yes']);
  assert.ok(allInSync(states));
});

test('lagging member is behind by entries', () => {
  const states = assessSync([
    reachable(member('n1', 1200, 1100, digestA)),
    reachable(member('n2', 1150, 1050, digestB)),
  ]);
  assert.equal(states.map(formatSyncState), ['yes', 'behind 50']);
  assert.not.ok(allInSync(states));
});

test('same applied index, other digest differs', () => {
  const states = assessSync([
    reachable(member('n1', 1200, 1100, digestA)),
    reachable(member('n2', 1200, 1100, digestB)),
    reachable(member('n3', 1100, 1000, digestB)),
  ]);
  assert.equal(states.map(formatSyncState), ['DIFFERS', 'DIFFERS', 'behind 100']);
  assert.not.ok(allInSync(states));
});

test('same applied index, other count differs', () => {
  const states = assessSync([
    reachable(member('n1', 1200, 1100, digestA)),
    reachable(member('n2', 1200, 1099, digestA)),
  ]);
  assert.equal(states.map(formatSyncState), ['DIFFERS', 'DIFFERS']);
});

test('unreachable member is down', () => {
  const states = assessSync([reachable(member('n1', 10, 10, digestA)), down]);
  assert.equal(states.map(formatSyncState), ['yes', 'down']);
  assert.not.ok(allInSync(states));
});

test('two members with one id', () => {
  // n1 of another cluster, at another address.
  const other: MemberProbe = { address: '127.0.0.1:47505', status: member('n1', 50_000, 50_000, digestB) };
  const states = assessSync([reachable(member('n1', 3000, 3000, digestA)), reachable(member('n2', 3000, 3000, digestA)), other]);
  assert.equal(states.map(formatSyncState), ['SAME ID as 127.0.0.1:47505', 'yes', 'SAME ID as 127.0.0.1:6001']);
  assert.not.ok(allInSync(states));
});

test('one address listed twice', () => {
  const states = assessSync([reachable(member('n1', 10, 10, digestA)), reachable(member('n1', 10, 10, digestA))]);
  assert.equal(states.map(formatSyncState), ['LISTED TWICE', 'LISTED TWICE']);
  assert.not.ok(allInSync(states));
});

test('no reachable member is not in sync', () => {
  const states = assessSync([down]);
  assert.equal(states.map(formatSyncState), ['down']);
  assert.not.ok(allInSync(states));
  assert.not.ok(allInSync([]));
});

test('table shows columns and digest prefix', () => {
  const probes = [reachable(member('n1', 1200, 1100, digestA)), down];
  const lines = formatStatusTable(probes, assessSync(probes)).trimEnd().split('\n');
  assert.is(lines.length, 4);
  const header = lines[0] ?? '';
  for (const column of ['id', 'role', 'term', 'commit', 'applied', 'lastLog', 'snapshot', 'messages', 'digest', 'in sync']) {
    assert.ok(header.includes(column), `header lacks ${column}: ${header}`);
  }
  const row = lines[1] ?? '';
  // 16 characters, as replog verify shows.
  assert.ok(row.includes(` ${'a'.repeat(16)} `), row);
  assert.not.ok(row.includes('a'.repeat(17)), row);
  assert.ok(row.endsWith('yes'), row);
  assert.ok((lines[2] ?? '').endsWith('down'), lines[2]);
  assert.is(lines[3], '127.0.0.1:6003: GET /status failed: ECONNREFUSED');
});

test('table columns line up', () => {
  const probes = [
    reachable(member('n1', 1_200_000, 1_100_000, digestA)),
    reachable(member('n2', 7, 7, digestB)),
  ];
  const lines = formatStatusTable(probes, assessSync(probes)).trimEnd().split('\n');
  const appliedEnd = (lines[0] ?? '').indexOf('applied') + 'applied'.length;
  assert.is((lines[1] ?? '').slice(appliedEnd - 7, appliedEnd), '1200000');
  assert.is((lines[2] ?? '').slice(appliedEnd - 1, appliedEnd), '7');
});

test('status body with documented fields parses', () => {
  const body: unknown = JSON.parse(JSON.stringify(member('n2', 5, 4, digestA)));
  assert.equal(parseMemberStatus(body), member('n2', 5, 4, digestA));
});

test('status body missing a field is rejected', () => {
  const { appliedIndex: _omitted, ...rest } = member('n2', 5, 4, digestA);
  assert.throws(() => parseMemberStatus(rest), /appliedIndex/);
  assert.throws(() => parseMemberStatus({ ...rest, appliedIndex: '5' }), /appliedIndex/);
  assert.throws(() => parseMemberStatus('n2'), /not a JSON object/);
});

test.run();
