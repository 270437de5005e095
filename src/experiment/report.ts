// The Markdown report of `replog experiment`.
import type { MessageRef } from '../verify/verify-cluster';
import type { LoadStats } from './load';
import { phasePlanMs, seconds, type ExperimentResult, type PhaseResult } from './run-experiment';

/** The prototype's results that the experiment reproduces. */
export const prototype = { messagesPerMinute: 1_301, downSeconds: 40, missingAfterDown: 3 } as const;

const digestShown = 16;

export function renderReport(result: ExperimentResult): string {
  const o = result.options;
  const lines: string[] = [
    '# replog experiment report',
    '',
    `- Started ${result.startedAt.toISOString()}, finished ${result.finishedAt.toISOString()} ` +
      `(${seconds(result.finishedAt.getTime() - result.startedAt.getTime())}).`,
    `- Cluster: ${result.members.length} local members (${result.members.map((m) => `${m.id} ${m.grpc}`).join(', ')}), data and logs in \`${o.dataDir}\`.`,
    clientsLine(result),
    `- Scale \`--minutes ${o.minutes}\`: phase 1 ${seconds(phasePlanMs.steady * o.minutes)} at ${o.ratePerSecond} messages/s; ` +
      `phase 2 at the same rate, a follower down ${seconds(phasePlanMs.down * o.minutes)}; ` +
      `phase 3 ${seconds(phasePlanMs.max * o.minutes)} at the maximum rate.`,
    `- The prototype stored ${fmt(prototype.messagesPerMinute)} messages a minute and, after one server was down ` +
      `${prototype.downSeconds} s, stayed ${prototype.missingAfterDown} messages short for good.`,
    '- Failed appends are retried (each valueset is stored at most once, so retrying is safe); "missing" counts ' +
      'acknowledged appends that a member does not store at the acknowledged index.',
    '',
    '## Verdict',
    '',
    `**${result.passed ? 'PASS' : 'FAIL'}**: ${result.verdict.replace(/^(PASS|FAIL): /, '')}`,
    '',
    '## Summary',
    '',
    '| phase | offered load | acknowledged | messages/s | messages/min | failed attempts | given up | members identical | missing (all members) | missing on the restarted member |',
    '|---|---|---:|---:|---:|---|---:|---|---:|---:|',
    ...result.phases.map(summaryRow),
    '',
  ];
  if (result.interrupted) lines.push('**Interrupted** (Ctrl-C): the phases not listed did not run.', '');
  if (result.error !== null) lines.push(`**Error**: ${result.error}`, '');
  for (const phase of result.phases) lines.push(...phaseSection(phase));
  return lines.join('\n');
}

function summaryRow(p: PhaseResult): string {
  const load = p.load;
  const missing = p.members.reduce((sum, m) => sum + m.ack.missing, 0);
  return `| ${p.number} ${p.title} | ${p.offered} | ${load ? fmt(load.acknowledged) : '-'} | ` +
    `${load ? load.acknowledgedPerSecond.toFixed(1) : '-'} | ${load ? fmt(Math.round(load.acknowledgedPerSecond * 60)) : '-'} | ` +
    `${load ? errors(load.attemptErrorsByCode) : '-'} | ${load ? fmt(load.failed) : '-'} | ${p.verify?.ok ? 'yes' : 'NO'} | ` +
    `${missing} | ${p.missingOnRestarted ?? 'n/a'} |`;
}

function phaseSection(p: PhaseResult): string[] {
  const lines = [`## Phase ${p.number}: ${p.title}`, ''];
  const load = p.load;
  if (load) lines.push(...loadLines(p, load));
  if (p.timeline.length > 0) {
    lines.push('', 'Timeline (since the load started):', '');
    for (const t of [...p.timeline].sort((a, b) => a.atMs - b.atMs)) lines.push(`- +${seconds(t.atMs)}: ${t.event}`);
  }
  lines.push(
    '',
    p.syncWaitMs === null
      ? '**The members did not converge** after the load stopped.'
      : `All members in sync ${seconds(p.syncWaitMs)} after the load stopped.`,
    '',
    '| member | role | applied index | messages | digest | first message (index, received_at) | last message (index, received_at) | missing acknowledged | check |',
    '|---|---|---:|---:|---|---|---|---:|---|',
    ...p.members.map((m) =>
      `| ${m.label} | ${m.role} | ${m.appliedIndex ?? '-'} | ${m.messageCount ?? '-'} | ` +
        `\`${m.digest?.slice(0, digestShown) ?? '-'}\` | ${messageRef(m.first)} | ${messageRef(m.last)} | ${m.ack.missing} | ${m.check} |`,
    ),
    '',
  );
  const digests = new Set(p.members.map((m) => m.digest));
  lines.push(`- Digests equal on every member: **${digests.size === 1 && !digests.has(null) ? 'yes' : 'NO'}**.`);
  if (p.restarted !== null) {
    lines.push(`- Missing on the restarted member (${p.restarted}): **${p.missingOnRestarted ?? 'unknown'}**.`);
  }
  for (const m of p.members) {
    if (m.ack.misplaced > 0) lines.push(`- ${m.label}: ${m.ack.misplaced} acknowledged messages stored at another index.`);
    for (const e of m.ack.examples) {
      lines.push(`- ${m.label} misses phase ${e.phase} append #${e.sequence}, acknowledged at index ${e.index}.`);
    }
  }
  const unacked = Math.max(0, ...p.members.map((m) => m.ack.storedUnacknowledged));
  if (unacked > 0) {
    lines.push(`- ${unacked} stored messages were never acknowledged to the client (their reply was lost or given up); they are stored on every member alike.`);
  }
  if (p.verify) {
    lines.push(`- Verify: \`${p.verify.verdict}\``);
    for (const problem of p.verify.problems) lines.push(`  - ${problem}`);
  }
  lines.push('');
  return lines;
}

function loadLines(p: PhaseResult, load: LoadStats): string[] {
  const lines = [
    `- Offered load: ${p.offered}, for ${seconds(load.durationMs)} (planned ${seconds(p.plannedLoadMs)}).`,
    `- Acknowledged: ${fmt(load.acknowledged)} of ${fmt(load.started)} appends started ` +
      `(${load.acknowledgedPerSecond.toFixed(1)} messages/s, ${fmt(Math.round(load.acknowledgedPerSecond * 60))} a minute; ` +
      `${load.duplicateReplies} replies said the valueset was already stored, after a retry by the client or by HAProxy).`,
    `- Failed attempts (retried) by code: ${errors(load.attemptErrorsByCode)}; given up: ${load.failed}` +
      (load.failed > 0 ? ` (${errors(load.failedByCode)})` : '') + '.',
  ];
  for (const [code, message] of Object.entries(load.firstErrorByCode)) lines.push(`  - first ${code}: ${message}`);
  if (p.acknowledgedWhileDown !== null) lines.push(`- Acknowledged while ${p.restarted} was down: ${fmt(p.acknowledgedWhileDown)}.`);
  if (load.maxBehindSchedule > 1) lines.push(`- At most ${load.maxBehindSchedule} appends were behind the offered schedule.`);
  return lines;
}

function messageRef(ref: MessageRef | null): string {
  return ref === null ? '-' : `${ref.index}, ${new Date(ref.receivedAtMs).toISOString()} (${ref.receivedAtMs})`;
}

function errors(byCode: Readonly<Record<string, number>>): string {
  const entries = Object.entries(byCode);
  return entries.length === 0 ? 'none' : entries.map(([code, n]) => `${code} ${n}`).join(', ');
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

/** Returns the line on how the clients reached the members, or that the run ended before it started them. */
function clientsLine(result: ExperimentResult): string {
  // The target is empty when the run ended before it started the cluster, such as on busy ports.
  if (result.target === '') return '- The cluster did not start, so no client ran.';
  if (result.haproxy) return `- Clients append through HAProxy at ${result.target} (round robin per call).`;
  return `- HAProxy is not installed, so the client balanced itself: grpc-js round_robin over ${result.target}.`;
}
