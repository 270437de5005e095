// Seeds that once failed, each replayed as its own test. A seed replays the
// same schedule only while the simulator draws its random choices in the same
// order. After a change to src/sim a seed here may test another schedule, so
// keep it anyway and add the failing seeds that the change brings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatRun, RUN_SETTINGS_DEFAULT, runSeed } from '../../src/sim/seeded-run';

interface RegressionSeed {
  readonly seed: number;
  /** What the seed found when it failed. */
  readonly found: string;
}

/**
 * Vote requests from candidates with stale logs reset the election timer of
 * the only members that could win, so no leader was elected after healing.
 */
const STALE_CANDIDATES_RESET_TIMER = 'stale candidates reset election timers';

const REGRESSION_SEEDS: readonly RegressionSeed[] = [
  { seed: 85, found: STALE_CANDIDATES_RESET_TIMER },
  { seed: 613, found: STALE_CANDIDATES_RESET_TIMER },
  { seed: 1961, found: STALE_CANDIDATES_RESET_TIMER },
];

for (const { seed, found } of REGRESSION_SEEDS) {
  test(`seed ${seed} (${found})`, () => {
    const result = runSeed(seed, RUN_SETTINGS_DEFAULT);
    assert.ok(result.ok, formatRun(result));
  });
}

test.run();
