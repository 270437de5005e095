// A member whose state database was lost or damaged while it was down, but
// whose Raft log still contains every entry after the state it starts from,
// replays the log instead of fetching a snapshot. Its log can start below the
// snapshot that raft.db records, because compaction keeps
// --snapshot-keep-entries entries below it (a log that still starts at 0 when
// the snapshot index is below that count). The state then starts below the
// recorded snapshot, and the member must still start.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType, type Entry } from '../../src/consensus/types';
import { PeerTransport } from '../../src/grpc/peer-transport';
import { parseMemberConfig } from '../../src/node/config';
import { Member } from '../../src/node/member';
import { stateGapIndex } from '../../src/node/snapshot-fetch';
import { encodeMessage } from '../../src/storage/codec';
import { MessageStore } from '../../src/storage/message-store';
import { SqliteRaftLog } from '../../src/storage/raft-log';
import { stateDirectory } from '../../src/storage/state-dir';

const logger = pino({ level: 'silent' });
const entryCount = 10;

function entries(first: number, last: number): Entry[] {
  const list: Entry[] = [];
  for (let index = first; index <= last; index++) {
    list.push({ index, term: 1, type: EntryType.Normal, data: encodeMessage({ valueset: `m${index}`, receivedAtMs: index }) });
  }
  return list;
}

/** Returns the digest of a store that applied entries 1 to entryCount. */
function expectedDigest(root: string): string {
  const store = MessageStore.open(path.join(root, 'reference'));
  store.apply(entries(1, entryCount));
  const digest = store.summary().digest;
  store.close();
  return digest;
}

/**
 * Writes a data folder of a member of a cluster of one whose log contains
 * entries 1 to entryCount, all committed, compacted to a snapshot at
 * `snapshotIndex` with the log starting at `logStartIndex`.
 */
function writeRaftLog(dir: string, snapshotIndex: number, logStartIndex: number): void {
  const raftLog = SqliteRaftLog.open(dir);
  raftLog.persist(entries(1, entryCount), { term: 1, vote: 'n1', commit: entryCount });
  raftLog.compact({ index: snapshotIndex, term: 1 }, { index: logStartIndex, term: logStartIndex === 0 ? 0 : 1 });
  raftLog.close();
}

function configFor(dir: string) {
  return parseMemberConfig(['--id', 'n1', '--data', dir, '--grpc', '127.0.0.1:47091', '--http', '127.0.0.1:47092', '--peers', 'n1=127.0.0.1:47091'], {});
}

/** Starts a Member on `dir`, waits until it applied every entry, and returns its status. */
async function startAndApply(dir: string): Promise<ReturnType<Member['status']>> {
  const config = configFor(dir);
  assert.is(stateGapIndex(dir, logger), null, 'the log covers the gap, so no snapshot is fetched');
  const member = new Member(config, logger);
  const transport = new PeerTransport(config.id, config.peers, logger);
  transport.attach(member);
  member.start(transport);
  try {
    const deadline = Date.now() + 10_000;
    while (member.status().messageCount < entryCount && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return member.status();
  } finally {
    member.stop();
    transport.close();
  }
}

test('lost state, log from zero', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-state-lost-'));
  try {
    const dir = path.join(root, 'member');
    writeRaftLog(dir, 8, 0);
    const status = await startAndApply(dir);
    assert.is(status.messageCount, entryCount);
    assert.is(status.digest, expectedDigest(root));
    assert.ok(status.snapshotIndex <= status.appliedIndex, 'the recorded snapshot is not ahead of the state');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('lost state, older local snapshot', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'replog-state-lost-'));
  try {
    const dir = path.join(root, 'member');
    writeRaftLog(dir, 8, 3);
    // A snapshot file at 5, saved for a peer before the log was compacted to 8.
    const store = MessageStore.open(dir);
    store.apply(entries(1, 5));
    await store.saveSnapshot();
    store.close();
    // The live state is lost, so the store starts from the snapshot at 5.
    fs.rmSync(stateDirectory(dir), { recursive: true });
    const status = await startAndApply(dir);
    assert.is(status.messageCount, entryCount);
    assert.is(status.digest, expectedDigest(root));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test.run();
