import http2 = require('node:http2');
import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { loadReplogPackage } from '../client/proto';
import { writeFileDurablySync } from '../storage/durable-fs';
import { raftLogFileName } from '../storage/raft-log';
import { ingestServiceDefinition, ingestServiceHandlers } from '../grpc/ingest-service';
import { grpcMessageBytesMax, memberServerOptions } from '../grpc/peer-link';
import { appendStreamRoute } from '../grpc/append-stream';
import { peerRoutes } from '../grpc/peer-calls';
import { ShutdownListeners } from '../grpc/server-stream';
import { peerServiceHandlers } from '../grpc/peer-service';
import { PeerTransport } from '../grpc/peer-transport';
import { ReceiveBudget } from '../grpc/receive-budget';
import { appendRoute, routeCalls } from '../grpc/unary-append';
import { buildHttpServer, splitHostPort } from '../http/server';
import type { MemberConfig } from './config';
import { Member } from './member';
import type { AppendResult } from './waiters';
import { checkMembership, foldersBeforeStart, forgetNewDataFolder, membershipFileName, rejoinMarkerFileName } from './membership-file';
import { fetchSnapshotFromPeers, stateGapIndex } from './snapshot-fetch';

export interface RunningMember {
  readonly member: Member;
  readonly log: Logger;
  /** Stops serving, fails what is in flight, and closes the databases. */
  stop(): Promise<void>;
}

/** How long a shutdown waits for appends in flight before failing them. */
const shutdownGraceMs = 3000;

/** Starts one member: storage, core, gRPC servers and the HTTP endpoints. */
export async function runMember(config: MemberConfig, log?: Logger): Promise<RunningMember> {
  const logger = log ?? pino({ level: config.logLevel, base: { memberId: config.id } });
  const before = foldersBeforeStart(config.dataDir);
  const membership = checkMembership(
    config.dataDir,
    config.id,
    config.peers.map((p) => p.id),
  );
  if (membership === 'recorded') {
    logger.info({ file: membershipFileName }, 'recorded the member id and cluster of a data folder written before this record existed');
  }
  if (config.rejoin) markRejoin(config.dataDir, logger);
  let member: Member;
  try {
    const gapIndex = stateGapIndex(config.dataDir, logger);
    if (gapIndex !== null) await fetchSnapshotFromPeers(config, logger, gapIndex);
    member = new Member(config, logger);
  } catch (err) {
    if (membership === 'new') forgetNewDataFolder(config.dataDir, before);
    throw err;
  }
  const transport = new PeerTransport(config.id, config.peers, logger);
  transport.attach(member);

  const replog = loadReplogPackage();
  const ingest = ingestServiceDefinition((replog['Ingest'] as grpc.ServiceClientConstructor).service);
  const peer = (replog['Peer'] as grpc.ServiceClientConstructor).service;
  const servers: grpc.Server[] = [];
  const grpcServer = new grpc.Server(memberServerOptions);
  const shutdown = new AbortController();
  grpcServer.addService(ingest, ingestServiceHandlers(member, logger, shutdown.signal));
  servers.push(grpcServer);
  let raftServer = grpcServer;
  if (config.raftAddress !== config.grpcAddress) {
    raftServer = new grpc.Server(memberServerOptions);
    servers.push(raftServer);
  }
  raftServer.addService(peer, peerServiceHandlers(member, logger));

  const http = buildHttpServer(member, logger);
  try {
    const append = (valueset: string): Promise<AppendResult> => member.append(valueset);
    const budget = new ReceiveBudget(config.receiveBytesMax);
    member.metrics.watchReceiveBudget(budget);
    const ingestCalls = [
      appendRoute(append, grpcMessageBytesMax, budget, logger),
      appendStreamRoute(append, new ShutdownListeners(shutdown.signal), grpcMessageBytesMax, budget, logger),
    ];
    const peerCalls = peerRoutes(member, grpcMessageBytesMax, logger);
    const grpcRoutes = new Map(raftServer === grpcServer ? [...ingestCalls, ...peerCalls] : ingestCalls);
    await bindGrpc(grpcServer, config.grpcAddress, '--grpc', (server) => routeCalls(server, grpcRoutes));
    if (raftServer !== grpcServer) {
      await bindGrpc(raftServer, config.raftAddress, '--raft', (server) => routeCalls(server, new Map(peerCalls)));
    }
    const { host, port } = splitHostPort(config.httpAddress);
    await http.listen({ host, port }).catch((err: Error) => {
      throw new Error(`cannot listen on --http ${config.httpAddress}: ${err.message}`);
    });
  } catch (err) {
    member.stop();
    for (const server of servers) server.forceShutdown();
    await http.close();
    if (membership === 'new') forgetNewDataFolder(config.dataDir, before);
    throw err;
  }
  member.start(transport);
  const singleThreadedGc = singleThreadedGcEnabled(process.execArgv);
  const cores = os.availableParallelism();
  if (!singleThreadedGc && cores <= singleThreadedGcCoresMax) {
    logger.warn(
      { cores },
      'member runs without --single-threaded-gc, so garbage collection lengthens latency tails on this machine; start it with node --single-threaded-gc',
    );
  }
  logger.info(
    {
      grpc: config.grpcAddress,
      raft: config.raftAddress,
      http: config.httpAddress,
      peers: config.peers,
      singleThreadedGc,
    },
    'member started',
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ pendingAppends: member.pendingAppends }, 'shutting down');
      // Refuse new calls, and end client streams with UNAVAILABLE once their
      // appends in flight have replies. Those get a grace period, then the rest
      // is cancelled, because peers' long-lived streams never end by themselves.
      for (const server of servers) server.tryShutdown(() => undefined);
      shutdown.abort();
      // Peer streams stay open until forceShutdown, so the handover can reach the others.
      await member.handOverLeadership(config.electionTimeoutMs);
      await drainAppends(member, shutdownGraceMs);
      for (const server of servers) server.forceShutdown();
      member.stop();
      transport.close();
      await http.close();
    })();
    return stopping;
  };
  return { member, log: logger, stop };
}

/**
 * HTTP/2 receive window of each stream a member serves, in bytes, in place of
 * the default 64 KiB. HAProxy 2.6 reads a connection's frames in order and
 * stops at a DATA frame it has no room for, so the WINDOW_UPDATE frames behind
 * that frame wait too. An AppendStream through HAProxy whose client sent
 * without reading then stayed stuck after the client read again: its requests
 * stopped at the end of the member's window, and they then blocked the
 * client's own window updates. That took 30,000 short requests with 64 KiB
 * and 74,000 with 1 MiB. 16 MiB fits the requests of the 65,536 unread
 * replies after which a stream fails, for valuesets up to about 240 bytes.
 * A paused stream buffers at most this much.
 */
export const streamWindowBytes = 16 * 1024 * 1024;
/**
 * HTTP/2 receive window of each connection a member serves, in bytes. HAProxy
 * carries many clients' calls over one connection, and all of them use this
 * window while HAProxy does not see the member's updates.
 */
export const connectionWindowBytes = 64 * 1024 * 1024;

/**
 * Binds a gRPC server with TCP_NODELAY on its accepted sockets and the larger
 * receive windows above. grpc-js 1.14 sets TCP_NODELAY on client sockets only.
 * Without it a small reply can wait for the peer's delayed ACK, up to 40 ms on
 * Linux loopback.
 */
function bindGrpc(
  server: grpc.Server,
  address: string,
  flag: string,
  prepare: (server: http2.Http2Server) => void = () => undefined,
): Promise<number> {
  // NOTE: grpc-js offers no option for these, so http2.createServer is wrapped
  // while bindAsync creates its listener; net.Server takes noDelay since Node 17.7.
  // `prepare` is called with each HTTP/2 server before grpc-js adds its listeners.
  const createServer = http2.createServer;
  const patched = (options: http2.ServerOptions, listener?: () => void): http2.Http2Server => {
    const settings = { ...options.settings, initialWindowSize: streamWindowBytes };
    const created = createServer({ ...options, settings, noDelay: true } as http2.ServerOptions, listener);
    created.on('session', (session) => session.setLocalWindowSize(connectionWindowBytes));
    prepare(created);
    return created;
  };
  (http2 as { createServer: unknown }).createServer = patched;
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(new Error(`cannot listen on ${flag} ${address}: ${err.message}`));
      else resolve(port);
    });
  }).finally(() => {
    (http2 as { createServer: unknown }).createServer = createServer;
  });
}

/**
 * How long no append may be in progress before the servers are closed. An
 * append leaves pendingAppends before grpc-js has written its reply, and
 * forceShutdown drops replies not yet written: the client then sees CANCELLED
 * for an append that was stored.
 */
const replyFlushMs = 100;

/** Resolves once the member has had no append in progress for replyFlushMs, or after `timeoutMs`. */
async function drainAppends(member: Member, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let idleSince = performance.now();
  while (performance.now() < deadline) {
    if (member.pendingAppends > 0) idleSince = performance.now();
    else if (performance.now() - idleSince >= replyFlushMs) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Writes the file that makes a member withhold its votes until caught up, for
 * --rejoin, before anything creates raft.db. A folder without raft.db has no
 * term, vote or log, whatever else it contains (membership.json of a start that
 * ended early, snapshot files). One that has raft.db keeps its votes, unless
 * an earlier --rejoin start left the file there.
 */
function markRejoin(dataDir: string, logger: Logger): void {
  const marker = path.join(dataDir, rejoinMarkerFileName);
  if (fs.existsSync(marker)) return;
  if (fs.existsSync(path.join(dataDir, raftLogFileName))) {
    logger.warn({ dataDir }, 'ignored --rejoin: the data folder has a Raft log, so this member kept its votes and log');
    return;
  }
  writeFileDurablySync(marker, 'votes withheld until a leader has caught this member up; see --rejoin in the README\n');
}

/**
 * Largest core count at which a member started without --single-threaded-gc
 * logs a warning. On 2 cores the flag cut the p99 at 1,000 appends/s by a
 * fifth (BENCHMARKS.md), and machines with more cores were not measured.
 */
const singleThreadedGcCoresMax = 2;

/**
 * Returns whether `execArgv` makes V8 collect garbage on the main thread only.
 * V8 (checked on Node 20.20) takes one or two leading dashes, `_` for `-`,
 * and `no` or `no-` before a name. The last of --single-threaded-gc and its
 * negation wins, and --single-threaded turns it on even after the negation.
 */
export function singleThreadedGcEnabled(execArgv: readonly string[]): boolean {
  let gcFlag = false;
  let singleThreaded = false;
  for (const arg of execArgv) {
    const name = arg.replace(/^--?/, '').replaceAll('_', '-');
    if (name === 'single-threaded-gc') gcFlag = true;
    else if (name === 'no-single-threaded-gc' || name === 'nosingle-threaded-gc') gcFlag = false;
    else if (name === 'single-threaded') singleThreaded = true;
    else if (name === 'no-single-threaded' || name === 'nosingle-threaded') singleThreaded = false;
  }
  return gcFlag || singleThreaded;
}
