export { connectIngest, type IngestClient, type IngestConnectOptions } from './ingest-client';
export { AppendStream, appendStreamDefaults, type AppendStreamOptions } from './append-stream';
export { IngestError, errorCode, isRetryableAppendError, statusCodeName } from './errors';
export { loadReplogPackage, protoLoaderOptions, replogProtoPath } from './proto';
export {
  InvalidAddressError,
  parseHostPort,
  parseHostPortList,
  toChannelTarget,
  type HostPort,
} from './target';
export type { AppendResult, StoredMessage } from './types';
