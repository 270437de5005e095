// Error messages for a --target that a client command cannot reach. grpc-js
// retries a refused connection until the deadline and then reports only that
// it timed out, so a plain TCP connect to each address separates the cases.
import * as net from 'node:net';
import { parseHostPortList, type HostPort } from '../client/target';

/** Time a TCP connect to one address may take. */
const probeTimeoutMs = 1000;

type ProbeResult = 'refused' | 'open' | 'unreachable';

/**
 * Returns why nothing can be reached at `target` when every address refuses
 * TCP connections, and null otherwise (or for a target with a grpc-js scheme).
 * Commands call it before waiting for a gRPC connection, to fail at once.
 */
export async function refusedTargetMessage(target: string): Promise<string | null> {
  const addresses = hostPorts(target);
  if (addresses.length === 0) return null;
  const results = await Promise.all(addresses.map(probe));
  if (!results.every((result) => result === 'refused')) return null;
  return `nothing listens on ${target} (connection refused); check --target and that the members or HAProxy run`;
}

/** Describes a gRPC connection to `target` that did not come up within `deadlineMs`. */
export async function connectFailureMessage(target: string, deadlineMs: number): Promise<string> {
  const addresses = hostPorts(target);
  const results = await Promise.all(addresses.map(probe));
  const open = addresses.filter((_, i) => results[i] === 'open').map(format);
  if (open.length > 0) {
    return (
      `${open.join(', ')} accepted a connection but did not answer as a gRPC server within ${deadlineMs} ms; ` +
      "check that --target names members' --grpc addresses or HAProxy, not --http addresses, " +
      "and that the server there is not paused or at its connection limit (HAProxy's maxconn)"
    );
  }
  return `failed to connect to ${target} within ${deadlineMs} ms; check --target and that a member listens there`;
}

function hostPorts(target: string): HostPort[] {
  try {
    return parseHostPortList(target);
  } catch {
    // A grpc-js target such as ipv4:127.0.0.1:5001 is not probed.
    return [];
  }
}

function format(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function probe(address: HostPort): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.host, port: address.port });
    const finish = (result: ProbeResult): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(probeTimeoutMs, () => finish('unreachable'));
    socket.once('connect', () => finish('open'));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'refused' : 'unreachable'));
  });
}
