/** Structured logger used by the storage layer (pino's call shape). */
export interface StorageLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Logger that drops every record; the default when the caller passes none. */
export const silentLogger: StorageLogger = {
  info: () => undefined,
  warn: () => undefined,
};
