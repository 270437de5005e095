// Fetching a member's GET /status, shared by `replog status`, `replog verify`
// and the experiments, with errors that describe the failure in plain words.
import { InvalidAddressError, parseHostPort } from '../client/target';
import { parseMemberStatus, type MemberStatus } from './status-table';

/** One member's `GET /status` outcome: the checked body, or why the request failed. */
export type StatusFetchResult = { readonly status: MemberStatus } | { readonly error: string };

const httpAddressForm = 'expected HOST:PORT or http://HOST:PORT[/status], with a port from 1 to 65535';

/**
 * Parses a member's HTTP address, given as `HOST:PORT` or as a URL like the
 * ones `replog cluster` prints: `http://HOST:PORT/status`, `http://HOST:PORT/`
 * or `http://HOST:PORT`. Returns `HOST:PORT`. Throws InvalidAddressError.
 */
export function parseHttpAddress(text: string): string {
  const trimmed = text.trim();
  if (/^https:\/\//i.test(trimmed)) {
    throw new InvalidAddressError(text, `${httpAddressForm}; members serve plain HTTP, not HTTPS`);
  }
  const hostPort = trimmed.replace(/^http:\/\//i, '').replace(/\/(status\/?)?$/, '');
  let address;
  try {
    address = parseHostPort(hostPort);
  } catch (error) {
    if (!(error instanceof InvalidAddressError)) throw error;
    throw new InvalidAddressError(text, httpAddressForm);
  }
  return `${address.host}:${address.port}`;
}

/** Parses a comma-separated list of {@link parseHttpAddress} values (at least one). */
export function parseHttpAddressList(text: string): string[] {
  const parts = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (parts.length === 0) {
    throw new InvalidAddressError(text, 'expected HOST:PORT[,HOST:PORT...]');
  }
  return parts.map(parseHttpAddress);
}

/**
 * Fetches and checks the `/status` of the member at `address` (`HOST:PORT`).
 * Every failure resolves as `{ error }`, so callers need no catch.
 */
export async function fetchMemberStatus(address: string, timeoutMs: number): Promise<StatusFetchResult> {
  const url = `http://${address}/status`;
  const notAMember = `is ${address} a member's --http address?`;
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    return { error: `GET ${url} ${describeFetchError(error, address, timeoutMs)}` };
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    return { error: `GET ${url} returned HTTP ${response.status}; ${notAMember}` };
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    if (isTimeout(error)) return { error: `GET ${url}: no complete reply within ${timeoutMs} ms` };
    return { error: `GET ${url} returned a body that is not JSON; ${notAMember}` };
  }
  try {
    return { status: parseMemberStatus(body) };
  } catch (error) {
    return { error: `GET ${url} returned an invalid status: ${(error as Error).message}; ${notAMember}` };
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === 'TimeoutError';
}

/**
 * Describes why `fetch` threw, as the rest of a sentence that starts with
 * "GET <url>". undici puts the network or parse error in `cause`, with a code
 * such as ECONNREFUSED, UND_ERR_SOCKET or HPE_INVALID_CONSTANT.
 */
function describeFetchError(error: unknown, address: string, timeoutMs: number): string {
  if (isTimeout(error)) return `failed: no reply within ${timeoutMs} ms`;
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const notAMember = `is ${address} a member's --http address?`;
  if (code === 'ECONNREFUSED') {
    return `failed: connection refused (ECONNREFUSED); is a member running with --http ${address}?`;
  }
  if (code?.startsWith('HPE_')) {
    // llhttp, the HTTP/1.1 parser of Node.js, names its parse errors HPE_*; a
    // gRPC (HTTP/2) port or any other protocol gets here.
    return `failed: the reply is not HTTP/1.1 (${code}); ${notAMember}`;
  }
  if (code === 'UND_ERR_SOCKET') {
    return `failed: the server closed the connection without an HTTP reply (${code}); ${notAMember}`;
  }
  let message = error instanceof Error ? error.message : String(error);
  if (typeof cause?.message === 'string') message = cause.message;
  return code === undefined ? `failed: ${message}` : `failed: ${message} (${code})`;
}
