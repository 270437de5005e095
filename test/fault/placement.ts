// Where the members of a fault-test cluster run and how they are addressed:
// each in its own network namespace (so links can be cut), or all on
// 127.0.0.1 when namespaces are not permitted.
import { freePorts } from '../../src/cluster/local-cluster';
import { NamespaceNetwork } from '../../src/cluster/netns';

/** How one member listens, how peers reach it, and how clients reach it. */
export interface MemberPlacement {
  readonly id: string;
  readonly listenGrpc: string;
  readonly listenHttp: string;
  /** The address in --peers: host and port that the other members dial. */
  readonly peerAddress: string;
  /** gRPC and HTTP addresses as seen by the clients, HAProxy and the probe agent. */
  readonly clientGrpc: string;
  readonly clientHttp: string;
  /** Command words that run the process in the member's namespace; empty on 127.0.0.1. */
  readonly commandPrefix: readonly string[];
}

export interface ClusterPlacement {
  readonly members: readonly MemberPlacement[];
  /** Command words that run clients, HAProxy and the probe agent next to the members. */
  readonly clientCommandPrefix: readonly string[];
  /** Where HAProxy listens for gRPC, reachable from the client side. */
  readonly haproxyGrpc: string;
  /** The namespace network when members run in namespaces, else null. */
  readonly network: NamespaceNetwork | null;
}

/** Ports inside a member's namespace; every namespace has its own, so they may be fixed. */
const namespaceGrpcPort = 7001;
const namespaceHttpPort = 8001;
const namespaceHaproxyPort = 7000;

/** Places each member in its own namespace of `network` (which must be created). */
export function namespacePlacement(network: NamespaceNetwork): ClusterPlacement {
  const members = network.memberIds.map((id) => ({
    id,
    listenGrpc: `0.0.0.0:${namespaceGrpcPort}`,
    listenHttp: `0.0.0.0:${namespaceHttpPort}`,
    peerAddress: `${network.peerAddress(id)}:${namespaceGrpcPort}`,
    clientGrpc: `${network.hubAddress(id)}:${namespaceGrpcPort}`,
    clientHttp: `${network.hubAddress(id)}:${namespaceHttpPort}`,
    commandPrefix: ['ip', 'netns', 'exec', network.memberNamespace(id)],
  }));
  return {
    members,
    clientCommandPrefix: ['ip', 'netns', 'exec', network.hubNamespace],
    haproxyGrpc: `127.0.0.1:${namespaceHaproxyPort}`,
    network,
  };
}

/** Places every member on 127.0.0.1 with free ports. */
export async function loopbackPlacement(memberIds: readonly string[]): Promise<ClusterPlacement> {
  const ports = await freePorts(memberIds.length * 2 + 1);
  const members = memberIds.map((id, i) => {
    const grpc = `127.0.0.1:${ports[1 + i]}`;
    const http = `127.0.0.1:${ports[1 + memberIds.length + i]}`;
    return { id, listenGrpc: grpc, listenHttp: http, peerAddress: grpc, clientGrpc: grpc, clientHttp: http, commandPrefix: [] };
  });
  return { members, clientCommandPrefix: [], haproxyGrpc: `127.0.0.1:${ports[0]}`, network: null };
}

