import type { Entry, Message, NodeId } from '../consensus/types';
import type { Rng } from './rng';

/** Simulated time units in one tick; message delays are counted in these. */
export const TIME_UNITS_PER_TICK = 10;

/** The faults of the network; every probability is per message copy. */
export interface NetworkFaults {
  /** Probability that a message is dropped, at most 0.3 in random runs. */
  readonly lossRate: number;
  /** Probability that a message is delivered twice. */
  readonly duplicateRate: number;
  /** Delay range of an ordinary message, in time units. */
  readonly delayUnitsMin: number;
  readonly delayUnitsMax: number;
  /** Probability that a message is held back long enough to arrive out of order. */
  readonly lateRate: number;
  /** Extra delay range of a held-back message, in time units. */
  readonly lateUnitsMax: number;
}

export const RELIABLE_NETWORK: NetworkFaults = {
  lossRate: 0,
  duplicateRate: 0,
  delayUnitsMin: 1,
  delayUnitsMax: 3,
  lateRate: 0,
  lateUnitsMax: 0,
};

export const UNRELIABLE_NETWORK: NetworkFaults = {
  lossRate: 0.1,
  duplicateRate: 0.05,
  delayUnitsMin: 1,
  delayUnitsMax: 8,
  lateRate: 0.1,
  lateUnitsMax: 5 * TIME_UNITS_PER_TICK,
};

/**
 * A message in flight. A snapshot message carries the sender's state machine
 * (its applied entries up to the snapshot index) beside the core's message,
 * the way a driver streams snapshot bytes outside the Raft message.
 */
export interface Envelope {
  readonly message: Message;
  readonly snapshotData: readonly Entry[] | null;
}

/**
 * Links between members and the faults on them. A partition cuts links, each
 * in one direction. The links are checked when a message is delivered, so a
 * partition that starts while the message is in flight still drops it.
 */
export class Network {
  private readonly cutLinks = new Set<string>();
  private description = 'healed';

  constructor(
    private readonly members: readonly NodeId[],
    public faults: NetworkFaults,
  ) {}

  /** Returns the delays, in time units, of each copy to deliver: none, one or two. */
  route(rng: Rng): number[] {
    if (rng.chance(this.faults.lossRate)) return [];
    const copies = rng.chance(this.faults.duplicateRate) ? 2 : 1;
    const delays: number[] = [];
    for (let copy = 0; copy < copies; copy += 1) delays.push(this.drawDelay(rng));
    return delays;
  }

  canDeliver(from: NodeId, to: NodeId): boolean {
    return !this.cutLinks.has(linkKey(from, to));
  }

  /** Returns true when no link is cut. */
  isHealed(): boolean {
    return this.cutLinks.size === 0;
  }

  describe(): string {
    return this.description;
  }

  heal(): void {
    this.cutLinks.clear();
    this.description = 'healed';
  }

  /** Cuts every link between members of different groups, both ways. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.heal();
    const groupOf = new Map<NodeId, number>();
    groups.forEach((group, index) => group.forEach((id) => groupOf.set(id, index)));
    for (const from of this.members) {
      for (const to of this.members) {
        if (from !== to && groupOf.get(from) !== groupOf.get(to)) this.cutLinks.add(linkKey(from, to));
      }
    }
    this.description = groups.map((group) => `{${group.join(',')}}`).join(' | ');
  }

  /** Splits the others into two sides that cannot talk; `bridge` reaches both. */
  bridge(bridgeId: NodeId, left: readonly NodeId[], right: readonly NodeId[]): void {
    this.partition([left, right, [bridgeId]]);
    for (const other of [...left, ...right]) {
      this.cutLinks.delete(linkKey(bridgeId, other));
      this.cutLinks.delete(linkKey(other, bridgeId));
    }
    this.description = `{${left.join(',')}} <${bridgeId}> {${right.join(',')}}`;
  }

  isolate(id: NodeId): void {
    const others = this.members.filter((member) => member !== id);
    this.partition([[id], others]);
  }

  private drawDelay(rng: Rng): number {
    const faults = this.faults;
    let delay = rng.int(faults.delayUnitsMin, faults.delayUnitsMax);
    if (rng.chance(faults.lateRate)) delay += rng.int(1, Math.max(1, faults.lateUnitsMax));
    return delay;
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
