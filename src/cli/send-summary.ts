import { errorCode, statusCodeName } from '../client/errors';
import type { AppendResult } from '../client/types';

/** A line of stdin that `replog send` sent as a valueset. */
export interface StdinLine {
  /** 1-based, counting the empty lines that were skipped. */
  readonly number: number;
  /** The line as read, without the --prefix. */
  readonly text: string;
}

/** Stdin line of the valueset behind a first error, as the summary shows it. */
export interface ErrorLine {
  readonly line: number;
  /** The first characters of the line, at most {@link lineStartCharactersMax}. */
  readonly start: string;
  /** True when the line is longer than `start`. */
  readonly truncated: boolean;
}

/** Characters of a failing line that the summary shows: enough to find the line in the input. */
export const lineStartCharactersMax = 20;

/** Counts of one `replog send` run. */
export class SendTally {
  sent = 0;
  stored = 0;
  duplicates = 0;
  /** The duplicates that replied to a retry, which an earlier attempt of the same append may have stored. */
  duplicatesAfterRetry = 0;
  retries = 0;
  readonly errorsByCode: Record<string, number> = {};
  /** Per code, the message of the error on the lowest stdin line, else of the first error recorded. */
  readonly firstErrorByCode: Record<string, string> = {};
  /** Per code, the stdin line of the valueset in `firstErrorByCode`, when it came from stdin. */
  readonly firstErrorLineByCode: Record<string, ErrorLine> = {};

  get errorCount(): number {
    return Object.values(this.errorsByCode).reduce((sum, n) => sum + n, 0);
  }

  get finished(): number {
    return this.stored + this.duplicates + this.errorCount;
  }

  /**
   * Counts an acknowledged append. `retried` is true when an earlier attempt
   * of it failed. That attempt may have stored it, so a duplicate reply is
   * then likely the append's own.
   */
  recordResult(result: AppendResult, retried = false): void {
    if (!result.duplicate) {
      this.stored += 1;
      return;
    }
    this.duplicates += 1;
    if (retried) this.duplicatesAfterRetry += 1;
  }

  /**
   * Counts a failed append. `line` is where its valueset came from, when it
   * came from stdin. Appends run concurrently and fail out of order, so an
   * error on an earlier line replaces the first error of its code.
   */
  recordError(error: unknown, line: StdinLine | null = null): void {
    const code = statusCodeName(errorCode(error));
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    const known = this.firstErrorLineByCode[code];
    const isFirst = !(code in this.firstErrorByCode) || (line !== null && known !== undefined && line.number < known.line);
    if (!isFirst) return;
    // The summary prints the code once, as the key.
    this.firstErrorByCode[code] = messageWithoutCode(error, code);
    if (line !== null) this.firstErrorLineByCode[code] = describeLine(line);
  }
}

/** Returns an error's message without the leading `CODE: ` that IngestError messages carry. */
export function messageWithoutCode(error: unknown, codeName: string): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith(`${codeName}: `) ? message.slice(codeName.length + 2) : message;
}

function describeLine(line: StdinLine): ErrorLine {
  // Code points, so that a character outside the BMP is never cut in half.
  const characters = Array.from(line.text.slice(0, 2 * lineStartCharactersMax));
  const start = characters.slice(0, lineStartCharactersMax).join('');
  return { line: line.number, start, truncated: start.length < line.text.length };
}

/** The result of `replog send`, as `--json` prints it. */
export interface SendSummary {
  readonly sent: number;
  readonly stored: number;
  /** Every duplicate reply, including those in `duplicatesAfterRetry`. */
  readonly duplicates: number;
  /** The duplicates that replied to a retry, which an earlier attempt of the same append may have stored. */
  readonly duplicatesAfterRetry: number;
  readonly errorCount: number;
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly firstErrorByCode: Readonly<Record<string, string>>;
  readonly firstErrorLineByCode: Readonly<Record<string, ErrorLine>>;
  readonly retries: number;
  readonly elapsedSeconds: number;
  /** Acknowledged appends (stored and duplicates) per second. */
  readonly messagesPerSecond: number;
  /** The signal that stopped the run before every valueset was sent, or null. */
  readonly interruptedBy: string | null;
  /**
   * Appends sent but without a reply or an error when the run ended, which
   * happens only after an interrupt. Each of them may or may not be stored.
   */
  readonly unanswered: number;
}

export function summarizeSend(tally: SendTally, elapsedMs: number, interruptedBy: string | null = null): SendSummary {
  const elapsedSeconds = elapsedMs / 1000;
  const acknowledged = tally.stored + tally.duplicates;
  return {
    sent: tally.sent,
    stored: tally.stored,
    duplicates: tally.duplicates,
    duplicatesAfterRetry: tally.duplicatesAfterRetry,
    errorCount: tally.errorCount,
    errorsByCode: { ...tally.errorsByCode },
    firstErrorByCode: { ...tally.firstErrorByCode },
    firstErrorLineByCode: { ...tally.firstErrorLineByCode },
    interruptedBy,
    unanswered: tally.sent - tally.finished,
    retries: tally.retries,
    elapsedSeconds: Math.round(elapsedSeconds * 1000) / 1000,
    messagesPerSecond: elapsedSeconds > 0 ? Math.round((acknowledged / elapsedSeconds) * 10) / 10 : 0,
  };
}

/** Returns the value of the summary's duplicates line, e.g. `3 (2 after a retry, ...)`. */
function formatDuplicates(summary: SendSummary): string {
  const afterRetry = summary.duplicatesAfterRetry;
  if (afterRetry === 0) return String(summary.duplicates);
  return `${summary.duplicates} (${afterRetry} after a retry, which an earlier attempt of the same append may have stored)`;
}

/** Render a summary as text lines for a terminal. */
export function formatSendSummary(summary: SendSummary): string {
  const byCode = Object.entries(summary.errorsByCode).map(([code, n]) => `${code} ${n}`);
  const errors = byCode.length === 0 ? '0' : `${summary.errorCount} (${byCode.join(', ')})`;
  const lines: string[] = [];
  if (summary.interruptedBy !== null) {
    lines.push(`interrupted   by ${summary.interruptedBy}, after which no valueset was sent`);
  }
  lines.push(
    `sent          ${summary.sent}`,
    `stored        ${summary.stored}`,
    `duplicates    ${formatDuplicates(summary)}`,
    `errors        ${errors}`,
  );
  const overloaded = summary.errorsByCode['RESOURCE_EXHAUSTED'] ?? 0;
  if (overloaded > 0) {
    lines.push(
      `overloaded    ${overloaded} failed after their retries because members were overloaded: ` +
        "lower --concurrency, raise --retries, or raise the members' --pending-appends-max",
    );
  }
  if (summary.unanswered > 0) {
    lines.push(`unanswered    ${summary.unanswered} (no reply when send stopped waiting, so each may or may not be stored)`);
  }
  lines.push(
    `retries       ${summary.retries}`,
    `elapsed       ${summary.elapsedSeconds} s`,
    `rate          ${summary.messagesPerSecond} messages/s`,
  );
  for (const [code, message] of Object.entries(summary.firstErrorByCode)) {
    const line = summary.firstErrorLineByCode[code];
    lines.push(`first ${code}: ${message}${line === undefined ? '' : ` (${formatErrorLine(line)})`}`);
  }
  return lines.join('\n') + '\n';
}

/** Returns `stdin line 3, "abc"`, or `stdin line 3, starting "abc"` for a longer line. */
function formatErrorLine(line: ErrorLine): string {
  return `stdin line ${line.line}, ${line.truncated ? 'starting ' : ''}${JSON.stringify(line.start)}`;
}
