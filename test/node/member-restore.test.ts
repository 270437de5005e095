// A member that lost its state database restores it from a peer's snapshot
// before the Member is built. That snapshot can end inside the member's own
// log, at an entry the member has with another term: an uncommitted tail of
// an old leader. Raft's rule for an installed snapshot then discards the log.
// Keeping it would make the member count its own entry as committed and
// reject every append of the leader for good.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType, type Entry } from '../../src/consensus/types';
import { parseMemberConfig } from '../../src/node/config';
import { Member } from '../../src/node/member';
import { encodeMessage } from '../../src/storage/codec';
import { MessageStore } from '../../src/storage/message-store';
import { SqliteRaftLog } from '../../src/storage/raft-log';

/** Entries from `first` on, one per term in `terms`, each a message named by its index and term. */
function entries(first: number, terms: readonly number[]): Entry[] {
  return terms.map((term, offset) => {
    const index = first + offset;
    return { index, term, type: EntryType.Normal, data: encodeMessage({ valueset: `m${index}-t${term}`, receivedAtMs: 0 }) };
  });
}

/**
 * Builds a data folder whose Raft log has entries 1-10 of term 1, with 1-3
 * committed, and whose state database is a peer's snapshot of entries 1-6,
 * where 4-6 have `snapshotTerm`. Returns the folder.
 */
async function folderWithSnapshot(root: string, snapshotTerm: number): Promise<string> {
  const dir = path.join(root, 'member');
  const raftLog = SqliteRaftLog.open(dir);
  raftLog.persist(entries(1, Array<number>(10).fill(1)), { term: 1, vote: null, commit: 3 });
  raftLog.close();

  const peer = MessageStore.open(path.join(root, 'peer'));
  peer.apply([...entries(1, [1, 1, 1]), ...entries(4, [snapshotTerm, snapshotTerm, snapshotTerm])]);
  const snapshotPath = path.join(root, 'snapshot.db');
  await peer.createSnapshot(snapshotPath);
  peer.close();

  const store = MessageStore.open(dir);
  store.restoreFrom(snapshotPath);
  store.close();
  return dir;
}

function memberOn(dir: string): Member {
  const config = parseMemberConfig(
    ['--id', 'n1', '--data', dir, '--grpc', '127.0.0.1:1', '--http', '127.0.0.1:2', '--peers', 'n1=127.0.0.1:1,n2=127.0.0.1:3,n3=127.0.0.1:4'],
    {},
  );
  return new Member(config, pino({ level: 'silent' }));
}

for (const { name, snapshotTerm, lastLogIndex, logStartIndex } of [
  { name: 'snapshot term differs: log discarded', snapshotTerm: 2, lastLogIndex: 6, logStartIndex: 6 },
  { name: 'snapshot term matches: log kept', snapshotTerm: 1, lastLogIndex: 10, logStartIndex: 0 },
]) {
  test(name, async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-member-restore-'));
    try {
      const dir = await folderWithSnapshot(root, snapshotTerm);
      const member = memberOn(dir);
      const status = member.status();
      member.stop();
      assert.is(status.appliedIndex, 6, 'the state is the snapshot');
      assert.is(status.lastLogIndex, lastLogIndex);
      assert.ok(status.commitIndex >= 6, 'the snapshot counts as committed');

      const raftLog = SqliteRaftLog.open(dir);
      const loaded = raftLog.load();
      raftLog.close();
      assert.is(loaded.logStart.index, logStartIndex);
      assert.is(loaded.hardState.term, 1, 'the term and vote stay');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
}

test.run();
