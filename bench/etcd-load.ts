// Load client for etcd (etcdserverpb.KV/Put), run by bench/etcd-vs-replog.sh
// with the same load generator, flags and report as `replog bench`:
//   node dist/bench/etcd-load.js --target 127.0.0.1:2379 --concurrency 64 --json
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoLoaderOptions } from '../src/client/proto';
import { runLoad } from '../src/client/load/load-generator';
import { buildLoadReport, formatLoadReport } from '../src/client/load/load-report';
import {
  parseFlags,
  parseIntegerFlag,
  processIo,
  runCommand,
  type CliIo,
} from '../src/cli/client-flags';
import { loadFlagOptions, loadFlagsHelp, readLoadFlags, uniqueValueMaker, type LoadFlags } from '../src/cli/load-flags';

/** From dist/bench/ back to bench/ at the repository root. */
const etcdProtoPath = path.join(__dirname, '../../bench/etcd-kv.proto');

const connectionsDefault = 3;
const connectionsMax = 1_000;

const etcdLoadHelp = `Usage: node dist/bench/etcd-load.js --target HOST:PORT [flags]

Put unique keys into etcd (KV/Put over gRPC) and report like \`replog bench\`.
Each key plus its value is --value-bytes long, the size of one replog valueset.

  --connections N           gRPC connections, spread over the workers; an HAProxy
                            in TCP mode balances per connection (default ${connectionsDefault})
${loadFlagsHelp}`;

interface EtcdLoadFlags extends LoadFlags {
  readonly connections: number;
}

interface PutRequest {
  readonly key: Buffer;
  readonly value: Buffer;
}

interface KvStub extends grpc.Client {
  Put(
    request: PutRequest,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null) => void,
  ): grpc.ClientUnaryCall;
}

function parseEtcdLoadFlags(argv: readonly string[]): EtcdLoadFlags | null {
  const values = parseFlags(argv, { ...loadFlagOptions, connections: { type: 'string' } });
  if (values.help) return null;
  return {
    ...readLoadFlags(values),
    connections: parseIntegerFlag('connections', values.connections, connectionsDefault, 1, connectionsMax),
  };
}

/** Open `count` KV clients, each on its own TCP connection. */
function connectKv(target: string, count: number): KvStub[] {
  const definition = protoLoader.loadSync(etcdProtoPath, protoLoaderOptions);
  const etcdserverpb = grpc.loadPackageDefinition(definition)['etcdserverpb'] as grpc.GrpcObject;
  const Kv = etcdserverpb['KV'] as grpc.ServiceClientConstructor;
  // A local subchannel pool stops grpc-js from sharing one connection between clients.
  const options: grpc.ChannelOptions = { 'grpc.use_local_subchannel_pool': 1 };
  return Array.from(
    { length: count },
    () => new Kv(target, grpc.credentials.createInsecure(), options) as unknown as KvStub,
  );
}

function put(client: KvStub, request: PutRequest, deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.Put(request, { deadline: Date.now() + deadlineMs }, (error) => (error ? reject(error) : resolve()));
  });
}

async function etcdLoad(flags: EtcdLoadFlags, io: CliIo): Promise<number> {
  const clients = connectKv(flags.target, flags.connections);
  const keyOf = uniqueValueMaker(1, flags.valueOrder);
  const padding = (key: Buffer): Buffer => Buffer.alloc(Math.max(0, flags.valueBytes - key.length), 'x');
  try {
    const measurement = await runLoad(
      {
        workerCount: flags.concurrency,
        ratePerSecond: flags.ratePerSecond,
        warmupMs: flags.warmupS * 1000,
        durationMs: flags.durationS * 1000,
        watchedPids: flags.pids,
      },
      async (worker, sequence) => {
        const key = Buffer.from(keyOf(sequence));
        const client = clients[worker % clients.length] as KvStub;
        await put(client, { key, value: padding(key) }, flags.deadlineMs);
      },
    );
    const report = buildLoadReport(
      {
        system: 'etcd',
        target: flags.target,
        mode: 'unary',
        concurrency: flags.concurrency,
        connections: flags.connections,
        rate: flags.ratePerSecond === 0 ? 'max' : flags.ratePerSecond,
        warmupS: flags.warmupS,
        durationS: flags.durationS,
        valueBytes: flags.valueBytes,
        valueOrder: flags.valueOrder,
      },
      measurement,
    );
    io.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatLoadReport(report));
    return report.acknowledged > 0 ? 0 : 1;
  } finally {
    clients.forEach((client) => client.close());
  }
}

/** Run the etcd load client; returns the exit status. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  return runCommand('node dist/bench/etcd-load.js', io, async () => {
    const flags = parseEtcdLoadFlags(argv);
    if (flags === null) {
      io.stdout.write(etcdLoadHelp);
      return 0;
    }
    return etcdLoad(flags, io);
  });
}

if (require.main === module) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
