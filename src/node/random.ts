import { randomInt } from 'node:crypto';

/**
 * Returns a generator of uniform numbers in [0, 1) for the core's election
 * timeouts (mulberry32). Members seed it from the OS, so their timeouts differ;
 * the simulator injects its own seeded generator instead.
 */
export function seededRandom(seed: number = randomInt(2 ** 31)): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
