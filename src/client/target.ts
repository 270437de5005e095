import * as net from 'node:net';

/** A `HOST:PORT` address as the user wrote it, split into its parts. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const portMax = 65_535;

/** An address that cannot be used; `expected` describes the accepted form. */
export class InvalidAddressError extends Error {
  constructor(
    readonly address: string,
    readonly expected: string,
  ) {
    super(`invalid address "${address}": ${expected}`);
    this.name = 'InvalidAddressError';
  }
}
const schemePattern = /^(dns|ipv4|ipv6|unix|unix-abstract):/;

/**
 * Parse `HOST:PORT`, where HOST is a name, an IPv4 address or a bracketed IPv6
 * address (`[::1]:5001`). Throws an Error naming the value on bad input.
 */
export function parseHostPort(text: string): HostPort {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : 0;
  if (!match || port < 1 || port > portMax) {
    throw new InvalidAddressError(text, `expected HOST:PORT with a port from 1 to ${portMax}`);
  }
  return { host: match[1] ?? '', port };
}

/** Parse a comma-separated list of `HOST:PORT` addresses (at least one). */
export function parseHostPortList(text: string): HostPort[] {
  const parts = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (parts.length === 0) {
    throw new InvalidAddressError(text, 'expected HOST:PORT[,HOST:PORT...]');
  }
  return parts.map(parseHostPort);
}

/**
 * Build a grpc-js channel target from a user-supplied target.
 *
 * A target that already has a scheme (`dns:`, `ipv4:`, `ipv6:`, `unix:`) is
 * used as is. One address becomes a plain `HOST:PORT` (resolved by DNS). Several
 * addresses become one `ipv4:` or `ipv6:` list so that the channel can spread
 * calls over them with the `round_robin` policy. grpc-js resolves no host names
 * inside such a list, so every address must be an IP literal (`localhost` is
 * taken as 127.0.0.1).
 */
export function toChannelTarget(target: string): string {
  if (schemePattern.test(target)) return target;
  const addresses = parseHostPortList(target);
  const first = addresses[0];
  if (addresses.length === 1 && first) return `${first.host}:${first.port}`;

  const literals = addresses.map(toIpLiteral);
  const families = new Set(literals.map((address) => address.family));
  if (families.size !== 1) {
    throw new InvalidAddressError(target, 'expected only IPv4 or only IPv6 addresses, not both');
  }
  const scheme = literals[0]?.family === 6 ? 'ipv6' : 'ipv4';
  return `${scheme}:${literals.map((address) => address.text).join(',')}`;
}

interface IpLiteral {
  readonly family: 4 | 6;
  readonly text: string;
}

function toIpLiteral(address: HostPort): IpLiteral {
  const host = address.host === 'localhost' ? '127.0.0.1' : address.host;
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  const family = net.isIP(bare);
  if (family === 4) return { family: 4, text: `${bare}:${address.port}` };
  if (family === 6) return { family: 6, text: `[${bare}]:${address.port}` };
  throw new InvalidAddressError(
    `${address.host}:${address.port}`,
    'expected an IP address: a list of several addresses cannot contain host names',
  );
}
