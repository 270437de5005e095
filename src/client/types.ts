/** The outcome of one successful append. */
export interface AppendResult {
  /** Log index at which the valueset is stored. */
  readonly index: number;
  /** True when the valueset was stored before, at `index`. */
  readonly duplicate: boolean;
}

/** One stored message as `Read` returns it. */
export interface StoredMessage {
  readonly index: number;
  readonly valueset: string;
  /** The leader's wall clock, in ms since the Unix epoch, when it appended the entry. */
  readonly receivedAtMs: number;
}

/** `AppendReply` as @grpc/proto-loader decodes it (camelCase, defaults on). */
export interface AppendReplyWire {
  readonly index: number;
  readonly duplicate: boolean;
  readonly code: number;
  readonly error: string;
}

/** `Message` as @grpc/proto-loader decodes it. */
export interface MessageWire {
  readonly index: number;
  readonly valueset: string;
  readonly receivedAtMs: number;
}

export interface AppendRequestWire {
  readonly valueset: string;
}

export interface ReadRequestWire {
  readonly fromIndex: number;
  readonly limit: number;
  readonly follow: boolean;
}
