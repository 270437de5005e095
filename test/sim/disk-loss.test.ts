// Members lose their disk (Cluster.wipe()) while clients propose and the
// network loses, delays and partitions messages. A wiped member stays down
// for more than twice the election timeout and rejoins with its votes
// withheld, as `replog node --rejoin` on an empty folder does. No committed
// entry may be lost. Without the hold, the same runs lose some.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChaosSchedule, type ChaosRates } from '../../src/sim/chaos';
import { checkLiveness } from '../../src/sim/liveness';
import { UNRELIABLE_NETWORK } from '../../src/sim/network';
import { InvariantViolation } from '../../src/sim/violation';
import { startCluster } from './helpers';

const SEEDS = 60;
const CHAOS_TICKS = 300;
const LIVENESS_TICKS_MAX = 400;

const RATES: ChaosRates = {
  proposalRate: 0.5,
  partitionRate: 0.02,
  healRate: 0.1,
  crashRate: 0.01,
  compactRate: 0.05,
  downTicksMax: 10,
  shortLeaderRate: 0.1,
  wipeRate: 0.03,
};

interface DiskLossRun {
  readonly wipes: number;
  readonly violation: InvariantViolation | null;
}

/** Runs one seed with wipes, then the liveness bound and the final log check. */
function runWithWipes(seed: number, rejoinWithoutHold: boolean): DiskLossRun {
  let wipes = 0;
  const cluster = startCluster(seed % 2 === 0 ? 3 : 5, {
    seed,
    faults: UNRELIABLE_NETWORK,
    readySplitRate: 0.5,
    rejoinWithoutHold,
    echoTrace: (line) => {
      if (line.endsWith(' lost its disk')) wipes += 1;
    },
  });
  try {
    const chaos = new ChaosSchedule(cluster, RATES);
    for (let tick = 0; tick < CHAOS_TICKS; tick += 1) {
      chaos.step();
      cluster.runTicks(1);
    }
    checkLiveness(cluster, cluster.rng, LIVENESS_TICKS_MAX);
    cluster.ledger.checkFinalLog((index) => cluster.checker.committedKeyAt(index));
    return { wipes, violation: null };
  } catch (error) {
    if (!(error instanceof InvariantViolation)) throw error;
    return { wipes, violation: error };
  }
}

test('wiped members keep committed entries', () => {
  let wipes = 0;
  for (let seed = 1; seed <= SEEDS; seed += 1) {
    const run = runWithWipes(seed, false);
    assert.is(run.violation, null, `seed ${seed}: ${run.violation?.message ?? ''}`);
    wipes += run.wipes;
  }
  assert.ok(wipes >= SEEDS, `${wipes} wipes in ${SEEDS} runs`);
});

test('rejoin without hold loses entries', () => {
  const failed = [];
  for (let seed = 1; seed <= SEEDS; seed += 1) {
    const run = runWithWipes(seed, true);
    if (run.violation !== null) failed.push(seed);
  }
  assert.ok(failed.length > 0, 'some run without the hold breaks an invariant');
});

test.run();
