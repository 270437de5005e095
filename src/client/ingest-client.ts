import * as grpc from '@grpc/grpc-js';
import { AppendStream, type AppendStreamOptions } from './append-stream';
import { IngestError, errorCode, retryPushbackFromTrailers } from './errors';
import { loadIngestConstructor } from './proto';
import { toChannelTarget } from './target';
import type {
  AppendReplyWire,
  AppendRequestWire,
  AppendResult,
  MessageWire,
  ReadRequestWire,
  StoredMessage,
} from './types';

/** Settings of a connection to one or more members (or a load balancer). */
export interface IngestConnectOptions {
  /** Default: insecure (cleartext HTTP/2), as replog members and HAProxy serve. */
  readonly credentials?: grpc.ChannelCredentials;
  /** Extra grpc-js channel options; they override the defaults set here. */
  readonly channelOptions?: grpc.ChannelOptions;
}

/** A typed client of `replog.v1.Ingest`. */
export interface IngestClient {
  /** Append one valueset; `deadlineMs` is the time budget from now. */
  append(valueset: string, deadlineMs: number): Promise<AppendResult>;
  /** Open a pipelined `AppendStream` call. */
  appendStream(options?: AppendStreamOptions): AppendStream;
  /** Read stored messages from `fromIndex` (0 = start); `limit` 0 = no limit. */
  read(fromIndex: number, limit: number, follow: boolean): AsyncGenerator<StoredMessage>;
  /** Wait until the channel is connected, or reject after `deadlineMs`. */
  waitForReady(deadlineMs: number): Promise<void>;
  close(): void;
}

/** The methods that @grpc/proto-loader generates for `Ingest`. */
interface IngestStub extends grpc.Client {
  Append(
    request: AppendRequestWire,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: AppendReplyWire) => void,
  ): grpc.ClientUnaryCall;
  AppendStream(options: grpc.CallOptions): grpc.ClientDuplexStream<AppendRequestWire, AppendReplyWire>;
  Read(request: ReadRequestWire, options: grpc.CallOptions): grpc.ClientReadableStream<MessageWire>;
}

/**
 * Ping interval and ping timeout of a client connection. A member that stops
 * responding (paused with SIGSTOP, or its host cut off) keeps its TCP
 * connection open. Without pings, each call sent there would wait for its
 * deadline, and the round robin would go on sending new calls there. Once a
 * ping times out, the connection closes and its calls fail with UNAVAILABLE,
 * which callers may retry. New calls go to the other addresses until the
 * member accepts a new connection. Five seconds is far above a busy member's
 * event loop stalls: at most 52 ms in a benchmark at 1,000 appends/s.
 */
const keepaliveTimeMs = 5000;
const keepaliveTimeoutMs = 5000;

/** Spread calls over every address of the target, one call at a time. */
const roundRobinServiceConfig = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

/**
 * Connect to `target`: `HOST:PORT`, a list `HOST:PORT,HOST:PORT,...` of IP
 * addresses (balanced with grpc-js `round_robin`), or a grpc-js target with a
 * scheme such as `ipv4:127.0.0.1:5001,127.0.0.1:5002`. The channel connects
 * lazily, on the first call.
 */
export function connectIngest(target: string, options: IngestConnectOptions = {}): IngestClient {
  const Ingest = loadIngestConstructor();
  const channelOptions: grpc.ChannelOptions = {
    'grpc.service_config': roundRobinServiceConfig,
    'grpc.keepalive_time_ms': keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': keepaliveTimeoutMs,
    ...options.channelOptions,
  };
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  // proto-loader builds the client at run time, so its methods are typed here by hand.
  const client = new Ingest(toChannelTarget(target), credentials, channelOptions);
  const stub = client as unknown as IngestStub;
  return {
    append: (valueset, deadlineMs) => appendUnary(stub, valueset, deadlineMs),
    appendStream: (streamOptions) => new AppendStream(stub.AppendStream({}), streamOptions),
    read: (fromIndex, limit, follow) => readMessages(stub, { fromIndex, limit, follow }),
    waitForReady: (deadlineMs) => waitForReady(stub, deadlineMs),
    close: () => stub.close(),
  };
}

function appendUnary(stub: IngestStub, valueset: string, deadlineMs: number): Promise<AppendResult> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + deadlineMs;
    stub.Append({ valueset }, { deadline }, (error, reply) => {
      if (error) {
        reject(new IngestError(errorCode(error), error.details || error.message, retryPushbackFromTrailers(error.metadata)));
      } else if (!reply) {
        reject(new IngestError(grpc.status.INTERNAL, 'Append returned neither a reply nor an error'));
      } else {
        resolve({ index: reply.index, duplicate: reply.duplicate });
      }
    });
  });
}

async function* readMessages(stub: IngestStub, request: ReadRequestWire): AsyncGenerator<StoredMessage> {
  const call = stub.Read(request, {});
  try {
    for await (const message of call as AsyncIterable<MessageWire>) {
      yield { index: message.index, valueset: message.valueset, receivedAtMs: message.receivedAtMs };
    }
  } catch (error) {
    throw new IngestError(errorCode(error), (error as Partial<grpc.ServiceError>).details ?? String(error));
  } finally {
    // Ends the call when the consumer stops early; a no-op after the server ended it.
    call.cancel();
  }
}

function waitForReady(stub: IngestStub, deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    stub.waitForReady(Date.now() + deadlineMs, (error) => (error ? reject(error) : resolve()));
  });
}
