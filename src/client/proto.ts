import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * Location of `proto/replog.proto` at the package root. This file compiles to
 * `dist/src/client/proto.js`, so the root is three directories up.
 */
export const replogProtoPath = path.join(__dirname, '../../../proto/replog.proto');

/**
 * Options for @grpc/proto-loader, shared by every replog client.
 * - `keepCase: false`: fields are camelCase in JavaScript (`fromIndex`,
 *   `receivedAtMs`); the wire format is the same either way.
 * - `longs: Number`: uint64 and int64 fields become JavaScript numbers. Log
 *   indexes and millisecond timestamps stay far below 2^53, so no precision is
 *   lost, and callers avoid `Long` objects.
 * - `defaults: true`: zero values are present (`duplicate: false`, `code: 0`)
 *   rather than missing, so replies need no undefined checks.
 * - `oneofs: true`: harmless today (the schema has no oneof); set so that a
 *   future oneof gets its virtual discriminator field.
 */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Load `replog.v1` from `proto/replog.proto` with {@link protoLoaderOptions}. */
export function loadReplogPackage(): grpc.GrpcObject {
  if (!fs.existsSync(replogProtoPath)) {
    throw new Error(
      `proto file not found at ${replogProtoPath}: run from a built package ` +
        '(dist/ next to proto/)',
    );
  }
  const definition = protoLoader.loadSync(replogProtoPath, protoLoaderOptions);
  const root = grpc.loadPackageDefinition(definition);
  const replog = root['replog'] as grpc.GrpcObject;
  return replog['v1'] as grpc.GrpcObject;
}

/** The generated client constructor of `replog.v1.Ingest`. */
export function loadIngestConstructor(): grpc.ServiceClientConstructor {
  return loadReplogPackage()['Ingest'] as grpc.ServiceClientConstructor;
}
