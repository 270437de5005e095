// Flags and REPLOG_* variables of `replog node`: an error names where the
// bad value came from, and a check across two flags blames the one the user
// set, never one left at its default.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMemberConfig, UsageError } from '../../src/node/config';

const base = ['--id', 'n1', '--data', '/tmp/replog-config-test', '--grpc', '127.0.0.1:7002', '--http', '127.0.0.1:7005', '--peers', 'n1=127.0.0.1:7002'];

function usageErrorOf(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  try {
    parseMemberConfig(argv, env);
  } catch (err) {
    assert.instance(err, UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a usage error');
}

test('flag error names the flag', () => {
  assert.is(usageErrorOf([...base, '--tick-ms', '0'], {}), 'invalid --tick-ms "0": expected an integer from 1 to 1000');
  assert.is(usageErrorOf([...base, '--tick-ms', '-1'], {}), 'invalid --tick-ms "-1": expected an integer from 1 to 1000');
});

test('batch delay defaults and bounds', () => {
  assert.is(parseMemberConfig(base, {}).batchDelayMs, 2);
  assert.is(parseMemberConfig([...base, '--batch-delay-ms', '0'], {}).batchDelayMs, 0);
  assert.is(parseMemberConfig(base, { REPLOG_BATCH_DELAY_MS: '5' }).batchDelayMs, 5);
  assert.is(usageErrorOf([...base, '--batch-delay-ms', '1001'], {}), 'invalid --batch-delay-ms "1001": expected an integer from 0 to 1000');
  assert.is(usageErrorOf([...base, '--batch-delay-ms', '0.5'], {}), 'invalid --batch-delay-ms "0.5": expected an integer from 0 to 1000');
});

test('pending bytes defaults and bounds', () => {
  assert.is(parseMemberConfig(base, {}).pendingBytesMax, 64 * 1024 * 1024);
  assert.is(parseMemberConfig(base, { REPLOG_PENDING_BYTES_MAX: '65536' }).pendingBytesMax, 65536);
  assert.is(
    usageErrorOf([...base, '--pending-bytes-max', '65535'], {}),
    'invalid --pending-bytes-max "65535": expected an integer from 65536 to 1099511627776',
  );
});

test('receive bytes defaults and bounds', () => {
  assert.is(parseMemberConfig(base, {}).receiveBytesMax, 64 * 1024 * 1024);
  assert.is(parseMemberConfig(base, { REPLOG_RECEIVE_BYTES_MAX: '1048576' }).receiveBytesMax, 1048576);
  assert.is(
    usageErrorOf([...base, '--receive-bytes-max', '1048575'], {}),
    'invalid --receive-bytes-max "1048575": expected an integer from 1048576 to 1099511627776',
  );
});

test('rejoin flag and variable', () => {
  const three = [...base.slice(0, -1), 'n1=127.0.0.1:7002,n2=127.0.0.1:7012,n3=127.0.0.1:7022'];
  assert.is(parseMemberConfig(three, {}).rejoin, false);
  assert.is(parseMemberConfig([...three, '--rejoin'], {}).rejoin, true);
  for (const value of ['1', 'true']) assert.is(parseMemberConfig(three, { REPLOG_REJOIN: value }).rejoin, true, value);
  for (const value of ['0', 'false']) assert.is(parseMemberConfig(three, { REPLOG_REJOIN: value }).rejoin, false, value);
  assert.is(usageErrorOf(three, { REPLOG_REJOIN: 'yes' }), 'invalid REPLOG_REJOIN "yes": expected 1, true, 0 or false');
  assert.match(usageErrorOf([...three, '--rejoin=1'], {}), /--rejoin/);
});

test('rejoin needs other members', () => {
  assert.match(usageErrorOf([...base, '--rejoin'], {}), /^invalid --rejoin: --peers lists only this member, "n1"/);
  assert.match(usageErrorOf(base, { REPLOG_REJOIN: '1' }), /^invalid --rejoin/);
});

test('variable error names the variable', () => {
  assert.is(
    usageErrorOf(base, { REPLOG_SNAPSHOT_THRESHOLD: 'abc' }),
    'invalid REPLOG_SNAPSHOT_THRESHOLD (--snapshot-threshold) "abc": expected an integer from 1 to 1000000000',
  );
});

test('flag wins over variable', () => {
  const config = parseMemberConfig([...base, '--tick-ms', '10'], { REPLOG_TICK_MS: 'abc' });
  assert.is(config.tickMs, 10);
});

test('heartbeat error blames set flag', () => {
  assert.is(
    usageErrorOf([...base, '--heartbeat-interval-ms', '5000'], {}),
    'invalid --heartbeat-interval-ms 5000: must be at most a third of --election-timeout-ms (1000, the default), ' +
      'or followers start elections between heartbeats. ' +
      'Raise --election-timeout-ms to at least 15000 or lower --heartbeat-interval-ms to at most 333.',
  );
  assert.is(
    usageErrorOf(base, { REPLOG_HEARTBEAT_INTERVAL_MS: '5000' }),
    'invalid REPLOG_HEARTBEAT_INTERVAL_MS (--heartbeat-interval-ms) 5000: must be at most a third of ' +
      '--election-timeout-ms (1000, the default), or followers start elections between heartbeats. ' +
      'Raise --election-timeout-ms to at least 15000 or lower --heartbeat-interval-ms to at most 333.',
  );
});

test('election error names default heartbeat', () => {
  assert.is(
    usageErrorOf([...base, '--election-timeout-ms', '200'], {}),
    'invalid --election-timeout-ms 200: must be at least 3 x --heartbeat-interval-ms (100, the default), ' +
      'or followers start elections between heartbeats. ' +
      'Raise --election-timeout-ms to at least 300 or lower --heartbeat-interval-ms to at most 66.',
  );
});

test('election error when both set', () => {
  assert.is(
    usageErrorOf([...base, '--heartbeat-interval-ms', '100', '--election-timeout-ms', '200'], {}),
    'invalid --election-timeout-ms 200: must be at least 3 x --heartbeat-interval-ms (100), ' +
      'or followers start elections between heartbeats. ' +
      'Raise --election-timeout-ms to at least 300 or lower --heartbeat-interval-ms to at most 66.',
  );
  // A third of 40 ms is below the 20 ms tick, so only a longer election timeout helps.
  assert.is(
    usageErrorOf([...base, '--election-timeout-ms', '40'], {}),
    'invalid --election-timeout-ms 40: must be at least 3 x --heartbeat-interval-ms (100, the default), ' +
      'or followers start elections between heartbeats. Raise --election-timeout-ms to at least 300.',
  );
});

test('tick error blames set flag', () => {
  assert.is(
    usageErrorOf([...base, '--tick-ms', '200'], {}),
    'invalid --tick-ms 200: must be at most --heartbeat-interval-ms (100, the default), ' +
      'because the leader sends at most one heartbeat per tick. ' +
      'Lower --tick-ms to at most 100 or raise --heartbeat-interval-ms to at least 200.',
  );
  // A heartbeat interval of 500 ms would no longer fit 3 times into the default election timeout.
  assert.is(
    usageErrorOf([...base, '--tick-ms', '500'], {}),
    'invalid --tick-ms 500: must be at most --heartbeat-interval-ms (100, the default), ' +
      'because the leader sends at most one heartbeat per tick. ' +
      'Lower --tick-ms to at most 100 or raise --heartbeat-interval-ms to at least 500 and --election-timeout-ms to at least 1500.',
  );
});

test('heartbeat below tick blames heartbeat', () => {
  assert.is(
    usageErrorOf([...base, '--heartbeat-interval-ms', '10'], {}),
    'invalid --heartbeat-interval-ms 10: must be at least --tick-ms (20, the default), ' +
      'because the leader sends at most one heartbeat per tick. ' +
      'Raise --heartbeat-interval-ms to at least 20 or lower --tick-ms to at most 10.',
  );
  assert.is(
    usageErrorOf([...base, '--heartbeat-interval-ms', '30', '--tick-ms', '40'], {}),
    'invalid --heartbeat-interval-ms 30: must be at least --tick-ms (40), ' +
      'because the leader sends at most one heartbeat per tick. ' +
      'Raise --heartbeat-interval-ms to at least 40 or lower --tick-ms to at most 30.',
  );
});

test('member addresses reject port 0', () => {
  const cases: readonly [string[], string][] = [
    [['--grpc', '127.0.0.1:0'], 'invalid --grpc "127.0.0.1:0": expected HOST:PORT with a port from 1 to 65535'],
    [['--raft', '127.0.0.1:0'], 'invalid --raft "127.0.0.1:0": expected HOST:PORT with a port from 1 to 65535'],
    [['--http', '127.0.0.1:0'], 'invalid --http "127.0.0.1:0": expected HOST:PORT with a port from 1 to 65535'],
    [['--http', '[::1]:65536'], 'invalid --http "[::1]:65536": expected HOST:PORT with a port from 1 to 65535'],
    [
      ['--peers', 'n1=127.0.0.1:7002,n2=127.0.0.1:0'],
      'invalid --peers entry "n2=127.0.0.1:0": expected ID=HOST:PORT with a port from 1 to 65535',
    ],
  ];
  for (const [flags, expected] of cases) {
    assert.is(usageErrorOf([...base, ...flags], {}), expected);
  }
  assert.is(
    usageErrorOf(base, { REPLOG_RAFT: '127.0.0.1:0' }),
    'invalid REPLOG_RAFT (--raft) "127.0.0.1:0": expected HOST:PORT with a port from 1 to 65535',
  );
  const config = parseMemberConfig([...base, '--raft', '127.0.0.1:1', '--http', '[::1]:65535'], {});
  assert.is(config.raftAddress, '127.0.0.1:1');
  assert.is(config.httpAddress, '[::1]:65535');
});

test('empty id is named', () => {
  const expected = 'the id is empty; expected 1 to 32 characters from a-z, 0-9 and "-" ([a-z0-9-]{1,32}), such as n1';
  assert.is(usageErrorOf([...base, '--id', ''], {}), `invalid --id "": ${expected}`);
  assert.is(usageErrorOf(base.slice(2), { REPLOG_ID: '' }), `invalid REPLOG_ID (--id) "": ${expected}`);
  assert.is(usageErrorOf(base.slice(2), {}), 'missing --id (or REPLOG_ID): member id, [a-z0-9-]{1,32}, unique in the cluster');
});

test('variables alone configure a member', () => {
  const config = parseMemberConfig([], {
    REPLOG_ID: 'n2',
    REPLOG_DATA: '/tmp/replog-config-test',
    REPLOG_GRPC: '127.0.0.1:7003',
    REPLOG_HTTP: '127.0.0.1:7006',
    REPLOG_PEERS: 'n2=127.0.0.1:7003',
  });
  assert.is(config.id, 'n2');
  assert.is(config.raftAddress, '127.0.0.1:7003');
});

test.run();
