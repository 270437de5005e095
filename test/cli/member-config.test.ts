// Flags and REPLOG_* variables of `replog node`: an error names where the
// bad value came from.
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
