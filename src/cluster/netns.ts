// Network namespaces for fault tests: one namespace per member and a "hub"
// namespace for clients, so a test can cut and heal the links between members
// with `ip link set ... down/up` without touching the host's network.
//
// Layout, for run octet R:
// - Member k's namespace `<prefix>-<id>` has its peer address 10.213.R.(10+k)/32
//   on `lo`, and one veth link per other member (named `p-<other id>`) with a
//   host route to that member's peer address. Members only reach each other
//   over these direct links, so setting a link down cuts exactly that pair.
// - The hub namespace `<prefix>-hub` has a bridge `br0` at 10.213.R.129/25, and
//   member k reaches it through a veth (`hub` in the member, `h-<id>` in the
//   hub) at 10.213.R.(130+k)/25. Peer addresses lie outside 10.213.R.128/25, so
//   peer traffic never detours through the hub when a direct link is down.
// Every command runs synchronously, so cleanup also works from an exit handler.
import { spawnSync } from 'node:child_process';
import { processExists } from './local-cluster';

/** First peer address offset in the run's /24: member k (1-based) gets .(10 + k). */
const peerAddressOffset = 10;
/** Hub side of the /24: the bridge is .129, member k's hub link .(130 + k). */
const hubBridgeOffset = 129;
const hubPrefixLength = 25;
/** Members one network supports; the address plan above leaves room for more. */
export const namespaceMembersMax = 9;
/** Namespace names must stay short enough for `ip netns` and readable in `ip netns list`. */
const prefixPattern = /^[a-z0-9-]{1,20}$/;

/** The result of probing whether this process may create network namespaces. */
export interface NamespaceSupport {
  readonly available: boolean;
  /** The failing command's output when namespaces are unavailable; empty when available. */
  readonly reason: string;
}

/** Runs `ip` with `args`; throws with the command and its stderr when it fails. */
export function runIp(args: readonly string[]): string {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.error) throw new Error(`ip ${args.join(' ')} failed: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`ip ${args.join(' ')} failed with exit status ${result.status}: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Checks whether namespaces work here by creating and deleting one named `<prefix>-probe`. */
export function probeNamespaceSupport(prefix: string): NamespaceSupport {
  const name = `${prefix}-probe`;
  try {
    runIp(['netns', 'add', name]);
    runIp(['netns', 'del', name]);
    return { available: true, reason: '' };
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
}

/** Lists the names of every network namespace on the host. */
export function listNamespaces(): string[] {
  const result = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (result.status !== 0) return [];
  return result.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.length > 0);
}

/** Kills every process in namespace `name` with SIGKILL and deletes the namespace. */
export function removeNamespace(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
  for (const pid of pids.split('\n').filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // The process exited between the listing and the kill.
    }
  }
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
}

/**
 * Deletes the namespaces left behind by earlier runs named `<root>-<pid>-...`
 * whose process `pid` no longer exists, or is this process. Namespaces of runs
 * that are still going are kept. Returns the deleted names.
 */
export function removeLeftoverNamespaces(root: string): string[] {
  const pattern = new RegExp(`^${root}-(\\d+)-`);
  const removed: string[] = [];
  for (const name of listNamespaces()) {
    const pid = Number(pattern.exec(name)?.[1] ?? NaN);
    if (Number.isNaN(pid)) continue;
    if (pid !== process.pid && processExists(pid)) continue;
    removeNamespace(name);
    removed.push(name);
  }
  return removed;
}

/** Members and hub in namespaces, connected as described at the top of this file. */
export class NamespaceNetwork {
  readonly hubNamespace: string;
  /** Pairs of members whose direct link is down, as `a|b` with a < b. */
  private readonly cutPairs = new Set<string>();
  private created = false;

  /**
   * `prefix` names the namespaces (`<prefix>-hub`, `<prefix>-<id>`); `runOctet`
   * (1..254) picks the subnet 10.213.<runOctet>.0/24.
   */
  constructor(
    readonly prefix: string,
    readonly memberIds: readonly string[],
    readonly runOctet: number,
  ) {
    if (!prefixPattern.test(prefix)) throw new Error(`invalid namespace prefix ${JSON.stringify(prefix)}: expected [a-z0-9-]{1,20}`);
    if (memberIds.length < 1 || memberIds.length > namespaceMembersMax) {
      throw new Error(`a namespace network has 1 to ${namespaceMembersMax} members, got ${memberIds.length}`);
    }
    if (!Number.isInteger(runOctet) || runOctet < 1 || runOctet > 254) {
      throw new Error(`invalid run octet ${runOctet}: expected an integer from 1 to 254`);
    }
    this.hubNamespace = `${prefix}-hub`;
  }

  memberNamespace(id: string): string {
    this.indexOf(id);
    return `${this.prefix}-${id}`;
  }

  /** Returns the address other members dial to reach member `id` (the host in --peers). */
  peerAddress(id: string): string {
    return `10.213.${this.runOctet}.${peerAddressOffset + this.indexOf(id) + 1}`;
  }

  /** Returns the address of member `id` as seen from the hub (clients, HAProxy, probes). */
  hubAddress(id: string): string {
    return `10.213.${this.runOctet}.${hubBridgeOffset + this.indexOf(id) + 1}`;
  }

  /** Creates every namespace, link, address and route; on failure removes what it made. */
  create(): void {
    this.created = true;
    try {
      this.createHub();
      for (const id of this.memberIds) this.createMember(id);
      for (const [a, b] of this.pairs()) {
        runIp(['-n', this.memberNamespace(a), 'link', 'add', `p-${b}`, 'type', 'veth', 'peer', 'name', `p-${a}`, 'netns', this.memberNamespace(b)]);
      }
      for (const [a, b] of this.pairs()) this.setPairUp(a, b);
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /**
   * Splits the members into `groups`: links between members of different
   * groups go down, links inside a group come up. Members missing from every
   * group are cut off from all others.
   */
  partition(groups: readonly (readonly string[])[]): void {
    const groupOf = new Map<string, number>();
    groups.forEach((group, g) => group.forEach((id) => groupOf.set(id, g)));
    for (const [a, b] of this.pairs()) {
      const together = groupOf.has(a) && groupOf.get(a) === groupOf.get(b);
      const key = `${a}|${b}`;
      if (together && this.cutPairs.has(key)) this.setPairUp(a, b);
      if (!together && !this.cutPairs.has(key)) this.setPairDown(a, b);
    }
  }

  /**
   * Cuts member `id` off so that what it sends to the others is lost without
   * an error, as when a router between them fails. The others' ends of its
   * links go down. Its own ends, routes and neighbor entries stay, and the
   * entries become permanent, so that no failed ARP lookup reports the cut.
   * Its connection attempts then hang in SYN-SENT. The others' attempts to
   * reach it fail at once, since their routes to it go with their ends of the
   * links. heal() undoes this.
   */
  dropFrom(id: string): void {
    const ns = this.memberNamespace(id);
    for (const other of this.memberIds) {
      if (other === id) continue;
      const otherNs = this.memberNamespace(other);
      const links = JSON.parse(runIp(['-j', '-n', otherNs, 'link', 'show', `p-${id}`])) as { address: string }[];
      const mac = links[0]?.address;
      if (mac === undefined) throw new Error(`no link p-${id} in namespace ${otherNs}`);
      runIp(['-n', ns, 'neigh', 'replace', this.peerAddress(other), 'lladdr', mac, 'dev', `p-${other}`, 'nud', 'permanent']);
      runIp(['-n', otherNs, 'link', 'set', `p-${id}`, 'down']);
      const [a, b] = this.indexOf(id) < this.indexOf(other) ? [id, other] : [other, id];
      this.cutPairs.add(`${a}|${b}`);
    }
  }

  /** Brings every member-to-member link back up with its routes. */
  heal(): void {
    this.partition([this.memberIds]);
  }

  /** Kills every process in the namespaces and deletes them; safe to call twice. */
  destroy(): void {
    if (!this.created) return;
    this.created = false;
    for (const id of this.memberIds) removeNamespace(this.memberNamespace(id));
    removeNamespace(this.hubNamespace);
  }

  private indexOf(id: string): number {
    const index = this.memberIds.indexOf(id);
    if (index < 0) throw new Error(`no member ${id} in namespace network ${this.prefix}`);
    return index;
  }

  private pairs(): [string, string][] {
    const pairs: [string, string][] = [];
    this.memberIds.forEach((a, i) => this.memberIds.slice(i + 1).forEach((b) => pairs.push([a, b])));
    return pairs;
  }

  private createHub(): void {
    const hub = this.hubNamespace;
    runIp(['netns', 'add', hub]);
    runIp(['-n', hub, 'link', 'set', 'lo', 'up']);
    runIp(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
    runIp(['-n', hub, 'addr', 'add', `10.213.${this.runOctet}.${hubBridgeOffset}/${hubPrefixLength}`, 'dev', 'br0']);
    runIp(['-n', hub, 'link', 'set', 'br0', 'up']);
  }

  private createMember(id: string): void {
    const ns = this.memberNamespace(id);
    runIp(['netns', 'add', ns]);
    runIp(['-n', ns, 'link', 'set', 'lo', 'up']);
    runIp(['-n', ns, 'addr', 'add', `${this.peerAddress(id)}/32`, 'dev', 'lo']);
    runIp(['-n', this.hubNamespace, 'link', 'add', `h-${id}`, 'type', 'veth', 'peer', 'name', 'hub', 'netns', ns]);
    runIp(['-n', this.hubNamespace, 'link', 'set', `h-${id}`, 'master', 'br0', 'up']);
    runIp(['-n', ns, 'addr', 'add', `${this.hubAddress(id)}/${hubPrefixLength}`, 'dev', 'hub']);
    runIp(['-n', ns, 'link', 'set', 'hub', 'up']);
  }

  /** Takes both ends of the a-b link down; the kernel drops their routes with them. */
  private setPairDown(a: string, b: string): void {
    runIp(['-n', this.memberNamespace(a), 'link', 'set', `p-${b}`, 'down']);
    runIp(['-n', this.memberNamespace(b), 'link', 'set', `p-${a}`, 'down']);
    this.cutPairs.add(`${a}|${b}`);
  }

  /** Brings both ends of the a-b link up and (re)adds the host route on each side. */
  private setPairUp(a: string, b: string): void {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const ns = this.memberNamespace(from);
      runIp(['-n', ns, 'link', 'set', `p-${to}`, 'up']);
      runIp(['-n', ns, 'route', 'replace', `${this.peerAddress(to)}/32`, 'dev', `p-${to}`, 'src', this.peerAddress(from)]);
    }
    this.cutPairs.delete(`${a}|${b}`);
  }
}
