// The server side of a streaming gRPC call that replog serves from Node's
// HTTP/2 stream itself (peer-calls.ts, append-stream.ts): response headers
// once, the status it ends with, and the call's deadline.
import type * as http2 from 'node:http2';
import type { Logger } from 'pino';
import type { FramingProblem, GrpcMessageReader } from './grpc-messages';
import { okHeaders, okTrailers, sendStatusOnly, startDeadline, statusFields } from './unary-append';

/** Returns the address at the other end of the stream's connection, for log lines. */
export function remoteAddress(stream: http2.ServerHttp2Stream): string {
  const socket = stream.session?.socket;
  return socket ? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` : 'unknown';
}

/** Labels of a call's failures in the log: the message, and the field that names the other end. */
export interface CallLabels {
  readonly failed: string;
  readonly remote: 'peer' | 'client';
}

/**
 * One streaming call served from its HTTP/2 stream: whether it failed, its
 * response headers, the status it ends with and its deadline.
 */
export class ServedCall {
  failed = false;
  private responded = false;
  private trailers: Readonly<Record<string, string>> = okTrailers;
  private readonly deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    private readonly log: Logger,
    private readonly labels: CallLabels,
  ) {
    // An error on the stream (a reset by the other end) is followed by 'close', and nothing waits for it.
    stream.on('error', () => undefined);
    stream.once('close', () => clearTimeout(this.deadline));
    // Peers and replog's clients set no deadline. A client that does gets it, as from grpc-js.
    this.deadline = startDeadline(headers, (code, details) => this.fail({ code, details }, 'debug'));
  }

  /**
   * Calls `onEnd` once the client ends its side after whole messages, and
   * fails the call when it ends inside one. Neither runs after a failure or a reset.
   */
  onClientEnd(reader: GrpcMessageReader, onEnd: () => void): void {
    this.stream.on('end', () => {
      if (this.failed || this.aborted) return;
      const problem = reader.endProblem();
      if (problem !== null) this.fail(problem, 'debug');
      else onEnd();
    });
  }

  /** Whether replies may still be written. */
  get open(): boolean {
    return !this.failed && !this.stream.destroyed && !this.stream.closed;
  }

  /**
   * Whether the other end reset the call or lost its connection. Node 20's
   * client ends a request before it resets it, so the member gets 'end' before
   * 'aborted', and a request that ends inside a message was most likely cancelled.
   */
  get aborted(): boolean {
    return this.stream.aborted || this.stream.destroyed;
  }

  /** Sends the response headers, once. */
  respond(): void {
    if (this.responded) return;
    this.responded = true;
    this.stream.respond(okHeaders, { waitForTrailers: true });
    this.stream.once('wantTrailers', () => this.stream.sendTrailers(this.trailers));
  }

  /** Ends the call with an OK status after `last`, if given. */
  finish(last?: Buffer): void {
    this.respond();
    clearTimeout(this.deadline);
    this.stream.end(last);
  }

  /** Ends the call with `problem` as its status, logging one line at `level`, unless it is over already. */
  fail(problem: FramingProblem, level: 'warn' | 'debug' = 'warn'): void {
    if (this.failed) return;
    this.failed = true;
    clearTimeout(this.deadline);
    if (this.stream.destroyed || this.stream.closed) return;
    const fields = { code: problem.code, err: problem.details, [this.labels.remote]: remoteAddress(this.stream) };
    if (level === 'warn') this.log.warn(fields, this.labels.failed);
    else if (this.log.isLevelEnabled('debug')) this.log.debug(fields, this.labels.failed);
    const retryPushbackMs = problem.retryPushbackMs ?? null;
    if (!this.responded) {
      sendStatusOnly(this.stream, problem.code, problem.details, retryPushbackMs);
      return;
    }
    this.trailers = statusFields(problem.code, problem.details, retryPushbackMs);
    this.stream.end();
  }
}
