// Floods one target (a member or HAProxy) with AppendStream calls of large,
// unique valuesets, as fast as HTTP/2 flow control allows, and reads every
// reply. Meanwhile it samples the RSS of the given member processes and a
// member's replog_pending_bytes, so it shows how the stream and byte bounds
// of a member hold against one heavy client (BENCHMARKS.md).
//   node dist/bench/stream-flood.js --target 127.0.0.1:48102 --pids 11,12,13 --metrics 127.0.0.1:48105
import fs from 'node:fs';
import * as http2 from 'node:http2';
import { parseFlags, parseIntegerFlag, FlagError, invalidFlagsExitCode } from '../src/cli/client-flags';
import { appendRequestFrame } from '../src/grpc/append-request';
import { valuesetBytesMax } from '../src/storage/codec';

const streamsDefault = 8;
const valueBytesDefault = 60_000;
const durationDefaultS = 30;
const sampleIntervalMs = 2000;

const usage = `Usage: node dist/bench/stream-flood.js --target HOST:PORT [flags]

Opens AppendStream calls on one HTTP/2 connection and sends unique valuesets
on each as fast as flow control allows, reading every reply. Prints every
${sampleIntervalMs / 1000} s the requests sent, the replies by gRPC status code, the RSS of
--pids and replog_pending_bytes of --metrics, then the peaks.

  --target HOST:PORT     gRPC address of a member or of HAProxy (required)
  --streams N            AppendStream calls (default ${streamsDefault})
  --value-bytes N        bytes of each valueset, 48 to ${valuesetBytesMax} (default ${valueBytesDefault})
  --duration-s N         seconds to send (default ${durationDefaultS})
  --pids P,...           member processes whose RSS is sampled
  --metrics HOST:PORT    HTTP address of a member whose replog_pending_bytes is sampled
`;

interface Settings {
  readonly target: string;
  readonly streams: number;
  readonly valueBytes: number;
  readonly durationS: number;
  readonly pids: number[];
  readonly metrics: string | null;
}

/** Returns field 3 (code) of an AppendReply, 0 when absent. */
function replyCode(message: Buffer): number {
  let offset = 0;
  let code = 0;
  while (offset < message.length) {
    const key = message[offset++]!;
    let value = 0;
    let scale = 1;
    let byte;
    do {
      byte = message[offset++] ?? 0;
      value += (byte & 0x7f) * scale;
      scale *= 128;
    } while (byte >= 0x80 && offset < message.length);
    if ((key & 7) === 2) offset += value;
    else if (key >> 3 === 3) code = value;
  }
  return code;
}

function rssMiB(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

async function pendingBytes(address: string): Promise<number | null> {
  try {
    const text = await (await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(1000) })).text();
    const match = /^replog_pending_bytes (\d+)$/m.exec(text);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

async function run(settings: Settings): Promise<void> {
  const session = http2.connect(`http://${settings.target}`);
  session.on('error', (err) => process.stdout.write(`connection error: ${err.message}\n`));
  const codes = new Map<number, number>();
  let sent = 0;
  let sequence = 0;
  const padding = 'v'.repeat(settings.valueBytes - 40);
  const streams: http2.ClientHttp2Stream[] = [];
  for (let s = 0; s < settings.streams; s++) {
    const stream = session.request({ ':method': 'POST', ':path': '/replog.v1.Ingest/AppendStream', 'content-type': 'application/grpc', te: 'trailers' });
    streams.push(stream);
    let pending: Buffer = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const length = pending.readUInt32BE(1);
        const code = replyCode(pending.subarray(5, 5 + length));
        codes.set(code, (codes.get(code) ?? 0) + 1);
        pending = pending.subarray(5 + length);
      }
    });
    stream.on('error', (err) => process.stdout.write(`stream error: ${err.message}\n`));
    const pump = (): void => {
      while (!stream.destroyed) {
        const valueset = `flood-${process.pid}-${String(sequence++).padStart(12, '0')}-${padding}`.slice(0, settings.valueBytes);
        sent++;
        if (!stream.write(appendRequestFrame(valueset))) return;
      }
    };
    stream.on('drain', pump);
    pump();
  }
  const peakRss = new Map<number, number>();
  let peakPending = 0;
  const startedMs = performance.now();
  const sample = async (): Promise<void> => {
    const rss = settings.pids.map((pid) => {
      const mib = rssMiB(pid);
      if (mib !== null) peakRss.set(pid, Math.max(peakRss.get(pid) ?? 0, mib));
      return `${pid} ${mib === null ? 'gone' : `${mib.toFixed(0)} MiB`}`;
    });
    const bytes = settings.metrics === null ? null : await pendingBytes(settings.metrics);
    if (bytes !== null) peakPending = Math.max(peakPending, bytes);
    const seconds = ((performance.now() - startedMs) / 1000).toFixed(0);
    const replies = [...codes].map(([code, count]) => `${code}: ${count}`).join(', ') || 'none';
    process.stdout.write(
      `${seconds} s  sent ${sent}  replies by code {${replies}}` +
        (rss.length > 0 ? `  RSS ${rss.join(', ')}` : '') +
        (bytes === null ? '' : `  pending bytes ${bytes}`) +
        '\n',
    );
  };
  const timer = setInterval(() => void sample(), sampleIntervalMs);
  await new Promise((resolve) => setTimeout(resolve, settings.durationS * 1000));
  clearInterval(timer);
  await sample();
  for (const stream of streams) stream.close();
  session.destroy();
  const peaks = [...peakRss].map(([pid, mib]) => `${pid} ${mib.toFixed(0)} MiB`).join(', ');
  process.stdout.write(`peak RSS: ${peaks || 'no --pids'}; peak pending bytes: ${settings.metrics === null ? 'no --metrics' : peakPending}\n`);
}

async function main(): Promise<void> {
  let settings: Settings;
  try {
    const values = parseFlags(process.argv.slice(2), {
      target: { type: 'string' },
      streams: { type: 'string' },
      'value-bytes': { type: 'string' },
      'duration-s': { type: 'string' },
      pids: { type: 'string' },
      metrics: { type: 'string' },
      help: { type: 'boolean' },
    });
    if (values.help === true) {
      process.stdout.write(usage);
      return;
    }
    if (values.target === undefined) throw new FlagError('--target is required');
    const pids = (values.pids ?? '').split(',').filter((text) => text !== '');
    for (const pid of pids) {
      if (!/^\d+$/.test(pid)) throw new FlagError(`invalid --pids entry "${pid}": expected a process id`);
    }
    settings = {
      target: values.target,
      streams: parseIntegerFlag('streams', values.streams, streamsDefault, 1, 1000),
      valueBytes: parseIntegerFlag('value-bytes', values['value-bytes'], valueBytesDefault, 48, valuesetBytesMax),
      durationS: parseIntegerFlag('duration-s', values['duration-s'], durationDefaultS, 1, 3600),
      pids: pids.map(Number),
      metrics: values.metrics ?? null,
    };
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    process.stderr.write(`${err.message}\n\n${usage}`);
    process.exitCode = invalidFlagsExitCode;
    return;
  }
  await run(settings);
}

main().catch((err: unknown) => {
  process.stderr.write(`stream-flood failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
