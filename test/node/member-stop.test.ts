// A Member that stops fails the appends still waiting for a leader at once,
// with the stop's error, instead of leaving them to the leader wait (3 s) and
// its "no leader is known". A member whose disk fills up stops in this way,
// and clients must learn about the disk, not about a missing leader.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ReplogError } from '../../src/grpc/errors';
import { parseMemberConfig } from '../../src/node/config';
import { Member } from '../../src/node/member';

/** Bound on the time from stop() to the rejection, well below the leader wait of 3000 ms. */
const rejectWithinMs = 1000;

test('stop fails appends waiting for a leader', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-member-stop-'));
  try {
    // The member is never started, so it ticks no clock and never learns of a
    // leader, and it sends nothing to the peer addresses.
    const config = parseMemberConfig(
      ['--id', 'n1', '--data', dir, '--grpc', '127.0.0.1:1', '--http', '127.0.0.1:2', '--peers', 'n1=127.0.0.1:1,n2=127.0.0.1:3,n3=127.0.0.1:4'],
      {},
    );
    const member = new Member(config, pino({ level: 'silent' }));
    const started = performance.now();
    const outcome = member.append('waits-for-a-leader').then(
      () => null,
      (err: unknown) => err as ReplogError,
    );
    member.stop();
    const error = await outcome;
    const ms = performance.now() - started;

    assert.ok(error, 'the append fails');
    assert.is(error!.code, status.UNAVAILABLE);
    assert.match(error!.message, /shutting down/);
    assert.ok(ms < rejectWithinMs, `the append failed ${Math.round(ms)} ms after stop(), the bound is ${rejectWithinMs} ms`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
