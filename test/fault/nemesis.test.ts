// Jepsen-style set test: clients append unique valuesets through HAProxy and
// record each outcome while a seeded nemesis kills, pauses and partitions the
// members (each in its own network namespace). After healing, every
// acknowledged valueset must be on every member at its acknowledged index,
// none twice, with identical sequences and digests.
//
// REPLOG_NEMESIS_SECONDS sets the length of the fault phase (default 60 s, so
// the file takes about 80 s); REPLOG_NEMESIS_SEED repeats a run's choices;
// REPLOG_NEMESIS_LOOPBACK=1 runs on 127.0.0.1 without partitions, as happens
// where `ip netns` is not permitted. A failure prints the seed and keeps the
// history and member logs.
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Nemesis } from './nemesis';
import { NemesisRun } from './nemesis-run';
import { checkSet, formatProblems, parseHistory, summarizeHistory, type MemberContents } from './set-check';

const faultSeconds = Number(process.env['REPLOG_NEMESIS_SECONDS'] ?? 60);
const seed = Number(process.env['REPLOG_NEMESIS_SEED'] ?? randomInt(2 ** 31));
const memberCount = 5;
/** Workload settings: concurrent appends, channels through HAProxy, and the deadline of one append. */
const workers = 16;
const channels = 4;
const appendDeadlineMs = 2000;
/** Appends go on this long after the last fault is healed, so the cluster shows it recovered. */
const recoverySeconds = 5;
const leaderTimeoutMs = 20_000;
const settleTimeoutMs = 60_000;
/** The whole file is stopped after the fault phase plus this, in case something hangs. */
const watchdogSlackMs = 150_000;

async function readMembers(run: NemesisRun): Promise<MemberContents[]> {
  const statuses = await run.waitSettled(settleTimeoutMs);
  const contents: MemberContents[] = [];
  for (const m of run.cluster.placement.members) {
    contents.push({ id: m.id, status: statuses.get(m.id)!, messages: await run.agent.read(m.clientGrpc) });
  }
  return contents;
}

test('set workload survives kills, pauses and partitions', async () => {
  if (!Number.isFinite(faultSeconds) || faultSeconds < 1) {
    throw new Error(`invalid REPLOG_NEMESIS_SECONDS ${process.env['REPLOG_NEMESIS_SECONDS']}: expected a number of seconds >= 1`);
  }
  const run = await NemesisRun.start({ memberCount, seed, loopbackOnly: process.env['REPLOG_NEMESIS_LOOPBACK'] === '1' });
  const watchdog = setTimeout(() => {
    console.error(`nemesis run timed out after ${faultSeconds} s of faults + ${watchdogSlackMs} ms; seed ${seed}`);
    run.keepFolder = true;
    process.exit(1);
  }, faultSeconds * 1000 + watchdogSlackMs);
  watchdog.unref();
  try {
    if (run.network === null) {
      console.log(`network partitions skipped, members run on 127.0.0.1 (kills and pauses still run): ${run.networkSkipReason}`);
    }
    console.log(`nemesis seed ${seed}, ${faultSeconds} s of faults on ${memberCount} members, folder ${run.dir}`);
    await run.waitForLeader(leaderTimeoutMs);

    const workload = run.runWorkload({
      valuePrefix: `s${seed}`, workers, channels, seconds: faultSeconds + recoverySeconds, deadlineMs: appendDeadlineMs,
    });
    const nemesis = new Nemesis(seed, run.cluster, run.network, run.agent, run.nemesisLogFile);
    await nemesis.run(Date.now() + faultSeconds * 1000);
    nemesis.healAll();
    const summary = await workload;
    console.log(`workload: ${JSON.stringify(summary)}`);
    assert.ok(summary.ok > 0, 'some appends were acknowledged');

    const outcomes = summarizeHistory(parseHistory(fs.readFileSync(run.historyFile, 'utf8')));
    const members = await readMembers(run);
    const problems = checkSet(outcomes, members);
    assert.ok(problems.length === 0, formatProblems(problems));
    const final = members[0]!.status;
    console.log(
      `checked ${outcomes.acknowledged.size} acknowledged, ${outcomes.unknownCount} unknown, ` +
        `${outcomes.failed.size} failed appends; ${final.messageCount} messages at index ${final.appliedIndex} on every member`,
    );
  } catch (err) {
    run.keepFolder = true;
    console.error(`nemesis run failed with seed ${seed}; rerun with REPLOG_NEMESIS_SEED=${seed}`);
    throw err;
  } finally {
    clearTimeout(watchdog);
    await run.close();
  }
});

test.run();
