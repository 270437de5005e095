import type { ChaosRates } from './chaos';
import type { ClusterOptions, CoreSettings } from './cluster';
import { TIME_UNITS_PER_TICK, type NetworkFaults } from './network';
import { Rng } from './rng';

/**
 * The fault mix of a random run. One mix of every fault at once rarely lines
 * up the few events a bug needs, so each seed leans one way:
 * - mixed: every fault at a moderate rate;
 * - leaderChurn: leaders die soon after election or right after a commit,
 *   one entry per append (the schedules of Figure 8 in the Raft paper,
 *   Ongaro and Ousterhout 2014);
 * - network: partitions, loss, duplicates and late messages;
 * - crashes: crashes inside Ready handling and quick restarts;
 * - snapshots: frequent compaction and long downtimes, so followers lag
 *   behind the leader's log start.
 */
export const RUN_PROFILES = ['mixed', 'leaderChurn', 'network', 'crashes', 'snapshots'] as const;
export type RunProfile = (typeof RUN_PROFILES)[number];

/** The whole random shape of one run, drawn from its seed. */
export interface RunShape {
  readonly profile: RunProfile;
  readonly cluster: ClusterOptions;
  readonly rates: ChaosRates;
}

/** Fault settings that one profile changes from the mixed profile's draws. */
type ProfileOverrides = Partial<ChaosRates> & {
  readonly readyCrashRate?: number;
  readonly newLeaderCrashRate?: number;
  readonly leaderCommitCrashRate?: number;
  readonly appendEntriesMax?: number;
  readonly inflightAppendsMax?: number;
  readonly faults?: Partial<NetworkFaults>;
};

function drawCore(rng: Rng): CoreSettings {
  return {
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: rng.pick([1, 2, 3]),
    preVote: rng.chance(0.75),
    checkQuorum: rng.chance(0.75),
    appendEntriesMax: rng.pick([1, 4, 64]),
    appendBytesMax: rng.pick([16, 64 * 1024]),
    inflightAppendsMax: rng.pick([1, 2, 8]),
  };
}

function drawFaults(rng: Rng): NetworkFaults {
  return {
    lossRate: rng.next() * 0.3,
    duplicateRate: rng.next() * 0.1,
    delayUnitsMin: 1,
    delayUnitsMax: rng.int(2, 2 * TIME_UNITS_PER_TICK),
    lateRate: rng.next() * 0.2,
    lateUnitsMax: rng.int(1, 5) * TIME_UNITS_PER_TICK,
  };
}

function drawRates(rng: Rng): ChaosRates {
  return {
    proposalRate: rng.pick([0.2, 0.5, 1]),
    partitionRate: rng.pick([0, 0.01, 0.03]),
    healRate: rng.pick([0.05, 0.1, 0.3]),
    crashRate: rng.pick([0, 0.01, 0.03]),
    compactRate: rng.pick([0, 0.05, 0.2]),
    downTicksMax: rng.pick([2, 5, 20, 60]),
    shortLeaderRate: rng.pick([0, 0.1]),
  };
}

function drawOverrides(profile: RunProfile, rng: Rng): ProfileOverrides {
  switch (profile) {
    case 'mixed':
      return { readyCrashRate: rng.pick([0, 0.005]), newLeaderCrashRate: rng.pick([0, 0.05]) };
    case 'leaderChurn':
      return {
        newLeaderCrashRate: rng.pick([0.3, 0.5]),
        leaderCommitCrashRate: rng.pick([0.3, 0.5]),
        shortLeaderRate: rng.pick([0, 0.3]),
        appendEntriesMax: rng.pick([1, 1, 4]),
        inflightAppendsMax: 1,
        proposalRate: 1,
        crashRate: 0,
        downTicksMax: rng.pick([2, 5, 20]),
      };
    case 'network':
      return {
        partitionRate: rng.pick([0.03, 0.06, 0.1]),
        faults: { lossRate: 0.1 + rng.next() * 0.2, lateRate: 0.1 + rng.next() * 0.2 },
      };
    case 'crashes':
      return { readyCrashRate: rng.pick([0.01, 0.03, 0.06]), crashRate: rng.pick([0.03, 0.06]), downTicksMax: rng.pick([0, 2, 5]) };
    case 'snapshots':
      return { compactRate: rng.pick([0.2, 0.5]), crashRate: rng.pick([0.02, 0.05]), downTicksMax: rng.pick([20, 60]) };
  }
}

/** Draws member count, core settings, network faults and fault rates from a seed. */
export function drawRunShape(seed: number): RunShape {
  const rng = new Rng(seed ^ 0x5eed5eed);
  const profile = rng.pick(RUN_PROFILES);
  const core = drawCore(rng);
  const faults = drawFaults(rng);
  const rates = drawRates(rng);
  const overrides = drawOverrides(profile, rng);
  const { readyCrashRate, newLeaderCrashRate, leaderCommitCrashRate, appendEntriesMax, inflightAppendsMax, faults: faultOverrides, ...rateOverrides } =
    overrides;
  const cluster: ClusterOptions = {
    seed,
    memberCount: rng.pick([3, 3, 4, 5, 5, 6, 7]),
    core: {
      ...core,
      appendEntriesMax: appendEntriesMax ?? core.appendEntriesMax,
      inflightAppendsMax: inflightAppendsMax ?? core.inflightAppendsMax,
    },
    faults: { ...faults, ...faultOverrides },
    readyDeferRate: rng.pick([0, 0.3, 0.7]),
    readyCrashRate: readyCrashRate ?? 0,
    newLeaderCrashRate: newLeaderCrashRate ?? 0,
    leaderCommitCrashRate: leaderCommitCrashRate ?? 0,
    tickSkewUnitsMax: rng.pick([0, 1, 2, 3]),
    // Drawn last, so the draws above give the same shapes as before it existed.
    readySplitRate: rng.pick([0, 0.3, 0.7, 1]),
  };
  // Drawn after everything else, so older seeds keep their shapes.
  const entryCacheMax = rng.pick([undefined, 0, 3, 64]);
  // Also after everything else. Byte bounds of 0 to 64 drop applied entries
  // at once or after a few, whatever the value of entryCacheMax.
  const entryCacheBytesMax = rng.pick([undefined, 0, 16, 64]);
  // Then a byte bound on the appends in flight, of 1 to 64 bytes of entry data.
  const inflightBytesMax = rng.pick([undefined, 1, 8, 64]);
  let shaped = cluster;
  if (entryCacheMax !== undefined) {
    const core = entryCacheBytesMax === undefined ? { ...cluster.core, entryCacheMax } : { ...cluster.core, entryCacheMax, entryCacheBytesMax };
    shaped = { ...cluster, core };
  }
  if (inflightBytesMax !== undefined) shaped = { ...shaped, core: { ...shaped.core, inflightBytesMax } };
  // Then how often the leader hands over its role, 0 in half of the runs.
  const transferRate = rng.pick([0, 0, 0.01, 0.05]);
  // Then how often a member loses its disk. Rejoining is safe only when a
  // leader cut off from the others steps down (check-quorum), as in replog.
  const wipeRate = shaped.core.checkQuorum ? rng.pick([0, 0, 0.005, 0.02]) : 0;
  return { profile, cluster: shaped, rates: { ...rates, ...rateOverrides, transferRate, wipeRate } };
}

/** Formats a shape in one line for the trace and failure reports. */
export function describeRunShape(shape: RunShape): string {
  const { cluster, rates } = shape;
  const { core, faults } = cluster;
  return [
    `profile=${shape.profile} members=${cluster.memberCount}`,
    `preVote=${core.preVote} checkQuorum=${core.checkQuorum}`,
    `heartbeat=${core.heartbeatIntervalTicks} appendMax=${core.appendEntriesMax} inflight=${core.inflightAppendsMax}/${core.inflightBytesMax ?? 'any'}B entryCache=${core.entryCacheMax ?? 'all'}/${core.entryCacheBytesMax ?? 'default'}B`,
    `loss=${faults.lossRate.toFixed(2)} dup=${faults.duplicateRate.toFixed(2)} late=${faults.lateRate.toFixed(2)}`,
    `crash=${rates.crashRate} readyCrash=${cluster.readyCrashRate ?? 0} newLeaderCrash=${cluster.newLeaderCrashRate ?? 0}`,
    `leaderCommitCrash=${cluster.leaderCommitCrashRate ?? 0} down=${rates.downTicksMax}`,
    `partition=${rates.partitionRate} shortLeader=${rates.shortLeaderRate} compact=${rates.compactRate} transfer=${rates.transferRate ?? 0} wipe=${rates.wipeRate ?? 0}`,
    `readyDefer=${cluster.readyDeferRate} readySplit=${cluster.readySplitRate ?? 0} skew=${cluster.tickSkewUnitsMax}`,
  ].join(' ');
}
