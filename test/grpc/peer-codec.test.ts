import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EntryType } from '../../src/consensus/types';
import type { Entry, Message } from '../../src/consensus/types';
import { decodeMessages, encodeMessages } from '../../src/grpc/peer-codec';
import { grpcMessageBytesMax } from '../../src/grpc/peer-link';
import { splitIntoFrames } from '../../src/grpc/peer-transport';

function append(entries: Entry[]): Message {
  return { type: 'append', from: 'n1', to: 'n2', term: 3, prevLogIndex: 9, prevLogTerm: 2, entries, commit: 9 };
}

function entry(index: number, text: string): Entry {
  return { index, term: 3, type: EntryType.Normal, data: Buffer.from(text) };
}

test('append entries round trip', () => {
  const sent = append([entry(10, 'ten'), { index: 11, term: 3, type: EntryType.Noop, data: new Uint8Array(0) }, entry(12, 'twelve')]);
  const [received] = decodeMessages(encodeMessages([sent]));
  assert.is(received?.type, 'append');
  if (received?.type !== 'append') return;
  assert.is(received.entries.length, 3);
  assert.equal(received.entries.map((e) => e.index), [10, 11, 12]);
  assert.equal(received.entries.map((e) => e.type), [EntryType.Normal, EntryType.Noop, EntryType.Normal]);
  assert.equal(received.entries.map((e) => Buffer.from(e.data).toString()), ['ten', '', 'twelve']);
});

test('decoded entry data share one unpooled buffer', () => {
  const frame = encodeMessages([append([entry(10, 'a'.repeat(100)), entry(11, 'b'.repeat(100))])]);
  const [received] = decodeMessages(frame);
  assert.is(received?.type, 'append');
  if (received?.type !== 'append') return;
  const buffers = new Set(received.entries.map((e) => e.data.buffer));
  assert.is(buffers.size, 1);
  assert.is(received.entries[0]!.data.buffer.byteLength, 200);
});

test('messages without entries pass unchanged', () => {
  const heartbeat: Message = { type: 'heartbeat', from: 'n1', to: 'n2', term: 3, commit: 4 };
  const empty = append([]);
  assert.equal(decodeMessages(encodeMessages([heartbeat, empty])), [heartbeat, empty]);
});

test('frame that is not a list is rejected', () => {
  assert.throws(() => decodeMessages(encodeMessages({} as unknown as Message[])), /expected a list of messages/);
});

test('a full window of appends splits into frames', () => {
  const data = Buffer.alloc(200 * 1024);
  const appends = Array.from({ length: 16 }, (_, i) => append([{ index: i + 1, term: 3, type: EntryType.Normal, data }]));
  const heartbeat: Message = { type: 'heartbeat', from: 'n1', to: 'n2', term: 3, commit: 9 };
  const frames = splitIntoFrames([heartbeat, ...appends]);
  assert.is(frames.length, 8, 'two appends of 200 KiB per frame');
  assert.equal(frames.flat(), [heartbeat, ...appends], 'every message once, in order');
  for (const frame of frames) {
    const bytes = encodeMessages(frame).length;
    assert.ok(bytes < grpcMessageBytesMax, `a frame of ${bytes} bytes is below the receiver's limit`);
  }
  const small = [heartbeat, append([entry(10, 'ten')])];
  assert.equal(splitIntoFrames(small), [small], 'small messages share one frame');
});

test('frames of tiny entries stay below the message limit', () => {
  const tiny = (index: number): Entry => ({ index, term: 3, type: EntryType.Normal, data: Buffer.from('x') });
  const appends = Array.from({ length: 16 }, (_, a) => append(Array.from({ length: 4096 }, (_, i) => tiny(a * 4096 + i + 1))));
  const frames = splitIntoFrames(appends);
  assert.equal(frames.flat(), appends, 'every message once, in order');
  for (const frame of frames) {
    const bytes = encodeMessages(frame).length;
    assert.ok(bytes < grpcMessageBytesMax, `a frame of ${bytes} bytes is below the receiver's limit`);
  }
});

test.run();
