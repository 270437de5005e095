import { createHash, type Hash } from 'node:crypto';
import type { Entry, Message } from '../consensus/types';

/** Lines kept for a failure report; older ones only feed the digest. */
export const TRACE_LINES_KEPT_DEFAULT = 400;

/**
 * The record of one run: every event as one line of text. A SHA-256 digest
 * covers all lines, so two runs of one seed can be compared byte for byte, and
 * the newest lines are kept to explain a failure.
 */
export class Trace {
  private readonly lines: string[] = [];
  private readonly hash: Hash = createHash('sha256');
  private lineCount = 0;

  constructor(
    private readonly linesKeptMax: number = TRACE_LINES_KEPT_DEFAULT,
    private readonly echo: ((line: string) => void) | null = null,
  ) {}

  add(time: string, text: string): void {
    const line = `${time} ${text}`;
    this.hash.update(line);
    this.hash.update('\n');
    this.lineCount += 1;
    this.lines.push(line);
    if (this.lines.length > this.linesKeptMax) this.lines.shift();
    this.echo?.(line);
  }

  /** Returns the hex digest of all lines so far; the trace stays usable. */
  digest(): string {
    return this.hash.copy().digest('hex');
  }

  count(): number {
    return this.lineCount;
  }

  /** Returns the newest lines, oldest first, with the number left out. */
  tail(): { readonly lines: readonly string[]; readonly omitted: number } {
    return { lines: this.lines.slice(), omitted: this.lineCount - this.lines.length };
  }
}

/** Formats entries as `index/term` ranges with their values, for the trace. */
export function describeEntries(entries: readonly Entry[]): string {
  if (entries.length === 0) return '[]';
  const parts = entries.map((entry) => {
    const value = entry.data.length === 0 ? 'noop' : Buffer.from(entry.data).toString('utf8');
    return `${entry.index}/${entry.term}:${value}`;
  });
  if (parts.length <= 6) return `[${parts.join(' ')}]`;
  return `[${parts.slice(0, 3).join(' ')} .. ${parts.slice(-2).join(' ')}] (${parts.length})`;
}

/** Formats a message in one line with the fields that matter for a trace. */
export function describeMessage(message: Message): string {
  const head = `${message.from}->${message.to} ${message.type} t${message.term}`;
  switch (message.type) {
    case 'vote':
      return `${head}${message.preVote ? ' pre' : ''}${message.transfer ? ' transfer' : ''} last=${message.lastLogIndex}/${message.lastLogTerm}`;
    case 'voteResponse':
      return `${head}${message.preVote ? ' pre' : ''} ${message.granted ? 'granted' : 'rejected'}`;
    case 'append':
      return `${head} prev=${message.prevLogIndex}/${message.prevLogTerm} commit=${message.commit} ${describeEntries(message.entries)}`;
    case 'appendResponse':
      return message.success
        ? `${head} ok match=${message.matchIndex}`
        : `${head} reject hint=${message.rejectHintIndex}/${message.rejectHintTerm}`;
    case 'heartbeat':
      return `${head} commit=${message.commit}`;
    case 'heartbeatResponse':
    case 'timeoutNow':
      return head;
    case 'snapshot':
      return `${head} snap=${message.snapshot.index}/${message.snapshot.term}`;
  }
}
