// Text output of `replog verify`: one table row per member, the problems, and
// the verdict as the last line.
import { countNoun } from '../cli/count-noun';
import { showValueset, type MemberVerification, type VerifyResult } from './verify-cluster';

/** Digest characters shown in the table. */
export const digestShown = 16;

const header = ['member', 'gRPC', 'applied', 'read', 'messages', 'digest (Read)', 'digest (/status)', 'dups', 'check'];
const numeric = new Set(['applied', 'read', 'messages', 'dups']);

/** The one-word-or-so state of a member in the table. */
export function memberCheck(m: MemberVerification): string {
  if (m.before === null) return 'DOWN';
  if (m.error !== null) return 'READ FAILED';
  const flags: string[] = [];
  if (m.countMatches === false) flags.push('COUNT');
  if (m.digestMatches === false) flags.push('DIGEST');
  if (m.duplicateCount > 0) flags.push('DUPLICATES');
  if (m.moved) flags.push('moved');
  return flags.length === 0 ? 'ok' : flags.join(',');
}

function row(m: MemberVerification): string[] {
  const b = m.before;
  const applied = b === null ? '-' : m.after && m.after.appliedIndex !== b.appliedIndex
    ? `${b.appliedIndex}->${m.after.appliedIndex}` : String(b.appliedIndex);
  return [
    m.label,
    m.grpc,
    applied,
    b === null ? '-' : String(m.messagesRead),
    b === null ? '-' : String(b.messageCount),
    b === null ? '-' : m.checkedDigest.slice(0, digestShown),
    b === null ? '-' : b.digest.slice(0, digestShown),
    b === null ? '-' : String(m.duplicateCount),
    memberCheck(m),
  ];
}

/** Aligned table of `header` and `rows`; columns named in `right` are right-aligned. */
export function formatTable(head: readonly string[], rows: readonly (readonly string[])[], right: ReadonlySet<string>): string {
  const widths = head.map((name, c) => Math.max(name.length, ...rows.map((r) => r[c]?.length ?? 0)));
  const render = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => (right.has(head[c] ?? '') ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [render(head), ...rows.map(render)].join('\n') + '\n';
}

/** The human-readable report; the verdict is the last line. */
export function formatVerifyResult(result: VerifyResult): string {
  const lines = [formatTable(header, result.members.map(row), numeric).trimEnd()];
  lines.push('');
  const quiet = result.quiescent ? 'quiescent' : 'NOT quiescent';
  const compared = result.comparedUpTo > 0 ? `compared indexes 1..${result.comparedUpTo}` : 'compared no indexes';
  // A member that is down, or whose read failed, is in the table but not in the comparison.
  const checked = result.members.filter((m) => m.before !== null && m.error === null).length;
  const total = result.members.length;
  const across = checked === total ? countNoun(total, 'member') : `${checked} of ${countNoun(total, 'member')}`;
  lines.push(`${compared} across ${across} ` +
    `(${quiet}, attempt ${result.attempts}); "read" counts every message Read returned, ` +
    '"digest (Read)" covers those up to the member\'s applied index');
  if (result.firstDifference) {
    lines.push(`first difference at index ${result.firstDifference.index}:`);
    for (const v of result.firstDifference.values) {
      lines.push(`  ${v.member}: ${v.valueset === null ? '(no message at this index)' : showValueset(v.valueset, 500)}`);
    }
  }
  for (const problem of result.problems) lines.push(`problem: ${problem}`);
  lines.push(result.verdict);
  return lines.join('\n') + '\n';
}
