import { errorCode, statusCodeName } from '../client/errors';
import type { AppendResult } from '../client/types';

/** Counts of one `replog send` run. */
export class SendTally {
  sent = 0;
  stored = 0;
  duplicates = 0;
  retries = 0;
  readonly errorsByCode: Record<string, number> = {};
  readonly firstErrorByCode: Record<string, string> = {};

  get errorCount(): number {
    return Object.values(this.errorsByCode).reduce((sum, n) => sum + n, 0);
  }

  get finished(): number {
    return this.stored + this.duplicates + this.errorCount;
  }

  recordResult(result: AppendResult): void {
    if (result.duplicate) this.duplicates += 1;
    else this.stored += 1;
  }

  recordError(error: unknown): void {
    const code = statusCodeName(errorCode(error));
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    // IngestError messages start with the code, which the summary prints once as the key.
    const message = error instanceof Error ? error.message : String(error);
    this.firstErrorByCode[code] ??= message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message;
  }
}

/** The result of `replog send`, as `--json` prints it. */
export interface SendSummary {
  readonly sent: number;
  readonly stored: number;
  readonly duplicates: number;
  readonly errorCount: number;
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly firstErrorByCode: Readonly<Record<string, string>>;
  readonly retries: number;
  readonly elapsedSeconds: number;
  /** Acknowledged appends (stored and duplicates) per second. */
  readonly messagesPerSecond: number;
}

export function summarizeSend(tally: SendTally, elapsedMs: number): SendSummary {
  const elapsedSeconds = elapsedMs / 1000;
  const acknowledged = tally.stored + tally.duplicates;
  return {
    sent: tally.sent,
    stored: tally.stored,
    duplicates: tally.duplicates,
    errorCount: tally.errorCount,
    errorsByCode: { ...tally.errorsByCode },
    firstErrorByCode: { ...tally.firstErrorByCode },
    retries: tally.retries,
    elapsedSeconds: Math.round(elapsedSeconds * 1000) / 1000,
    messagesPerSecond: elapsedSeconds > 0 ? Math.round((acknowledged / elapsedSeconds) * 10) / 10 : 0,
  };
}

/** Render a summary as text lines for a terminal. */
export function formatSendSummary(summary: SendSummary): string {
  const byCode = Object.entries(summary.errorsByCode).map(([code, n]) => `${code} ${n}`);
  const errors = byCode.length === 0 ? '0' : `${summary.errorCount} (${byCode.join(', ')})`;
  const lines = [
    `sent          ${summary.sent}`,
    `stored        ${summary.stored}`,
    `duplicates    ${summary.duplicates}`,
    `errors        ${errors}`,
    `retries       ${summary.retries}`,
    `elapsed       ${summary.elapsedSeconds} s`,
    `rate          ${summary.messagesPerSecond} messages/s`,
  ];
  for (const [code, message] of Object.entries(summary.firstErrorByCode)) {
    lines.push(`first ${code}: ${message}`);
  }
  return lines.join('\n') + '\n';
}
