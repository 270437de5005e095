import type { RaftConfig } from './types';

/**
 * Committed entries handed out in one Ready at most, so that a member catching
 * up applies a long backlog in bounded transactions.
 */
export const committedEntriesPerReadyMax = 4096;

/** Applied entries whose data stays in memory when RaftConfig.entryCacheMax is not set. */
export const entryCacheDefault = 8192;

/** Bytes of entry data in memory when RaftConfig.entryCacheBytesMax is not set. */
export const entryCacheBytesDefault = 32 * 1024 * 1024;

/** Throws RangeError naming the first invalid field of `config`. */
export function validateRaftConfig(config: RaftConfig): void {
  if (!config.peers.includes(config.id)) {
    throw new RangeError(`invalid peers: must include this member's id "${config.id}"`);
  }
  if (new Set(config.peers).size !== config.peers.length) {
    throw new RangeError(`invalid peers: ids must be unique, got ${config.peers.join(',')}`);
  }
  requirePositiveInteger('heartbeatIntervalTicks', config.heartbeatIntervalTicks);
  requirePositiveInteger('electionTimeoutTicks', config.electionTimeoutTicks);
  requirePositiveInteger('appendEntriesMax', config.appendEntriesMax);
  requirePositiveInteger('appendBytesMax', config.appendBytesMax);
  requirePositiveInteger('inflightAppendsMax', config.inflightAppendsMax);
  if (config.entryCacheMax !== undefined && (!Number.isInteger(config.entryCacheMax) || config.entryCacheMax < 0)) {
    throw new RangeError(`invalid entryCacheMax ${config.entryCacheMax}: must be an integer of at least 0`);
  }
  if (config.inflightBytesMax !== undefined && (!Number.isInteger(config.inflightBytesMax) || config.inflightBytesMax < 1)) {
    throw new RangeError(`invalid inflightBytesMax ${config.inflightBytesMax}: must be a positive integer`);
  }
  if (config.entryCacheBytesMax !== undefined && (!Number.isInteger(config.entryCacheBytesMax) || config.entryCacheBytesMax < 0)) {
    throw new RangeError(`invalid entryCacheBytesMax ${config.entryCacheBytesMax}: must be an integer of at least 0`);
  }
  if (config.electionTimeoutTicks <= config.heartbeatIntervalTicks) {
    throw new RangeError(
      `invalid electionTimeoutTicks ${config.electionTimeoutTicks}: must exceed heartbeatIntervalTicks ${config.heartbeatIntervalTicks}`,
    );
  }
}

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`invalid ${name} ${value}: must be an integer of at least 1`);
  }
}
