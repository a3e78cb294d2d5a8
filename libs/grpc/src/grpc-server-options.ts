import { join } from 'node:path';
import { ServerCredentials, experimental, type Server } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { HealthImplementation } from 'grpc-health-check';
import { Logger } from '@nestjs/common';
import { Transport, type GrpcOptions } from '@nestjs/microservices';
import { DEFAULT_GRPC_MAX_MESSAGE_BYTES, type GrpcServerSecurity } from '@xyp/config';
import { AcceptedTokens, bearerTokenInterceptor, watchTokensFile } from './grpc-auth';
import { reflectionService } from './reflection';
import { WatchedTlsFiles } from './tls-watch';

/** Folder of the .proto sources (package xuanyuan.v1). */
export const PROTO_ROOT = join(__dirname, '..', '..', '..', 'proto');
export const PIPELINE_PROTO = 'xuanyuan/v1/pipeline.proto';
export const REWARD_PROTO = 'xuanyuan/v1/reward.proto';

/**
 * proto-loader settings that match the ts-proto generated types: camelCase fields,
 * enums as their names (stringEnums=true), int64 as number (forceLong=number).
 */
export const PROTO_LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * Messages up to this size are accepted by default (grpc-js defaults to 4 MB; the servers' limit
 * is `XYP_GRPC_MAX_MESSAGE_BYTES`); SubmitRun may carry an uploaded corpus inline.
 */
export const MAX_MESSAGE_BYTES = DEFAULT_GRPC_MAX_MESSAGE_BYTES;

export type { GrpcServerSecurity };

export interface GrpcServer {
  options: GrpcOptions;
  health: HealthImplementation;
  /** The tokens the server accepts now (re-read from `tokensFile`); undefined when it is open. */
  tokens?: AcceptedTokens;
  /** The TLS material the server serves now, re-read from its files; undefined without TLS files. */
  tls?: WatchedTlsFiles;
  /** Stops watching the token and TLS files; call when the server stops. */
  close(): void;
}

/**
 * NestJS gRPC transport options for a server of the given protos, with the standard
 * health service (`grpc.health.v1.Health`, service '' = the whole server) and server
 * reflection (so grpcurl can list and call services without the .proto files).
 *
 * `security` (from `grpcServerSecurity` of `@xyp/config`): with tokens, every call but health
 * and reflection needs `authorization: Bearer <token>` metadata (a grpc-js server interceptor,
 * `channelOptions.interceptors`, which NestJS hands to `new Server`); with TLS, the server
 * speaks TLS and, with a CA, requires client certificates signed by it; with the files' paths
 * (`tls.files`, as `grpcServerSecurity` sets them) a renewed certificate, key or CA is served to new
 * connections without a restart (`WatchedTlsFiles`). Without tokens the
 * server is open, and says so once in a warning.
 */
export function grpcServerOptions(url: string, protoFiles: string[], servingServices: string[], security: GrpcServerSecurity = {}): GrpcServer {
  const health = new HealthImplementation(
    Object.fromEntries([['', 'SERVING'], ...servingServices.map((name) => [name, 'SERVING'])]),
  );
  const logger = new Logger('grpc');
  const served = servingServices.join(', ');
  const tokens = security.tokens && security.tokens.length > 0 ? new AcceptedTokens(security.tokens) : undefined;
  if (!tokens) logger.warn(`gRPC on ${url} (${served}) is unauthenticated: set XYP_GRPC_TOKENS or XYP_GRPC_TOKENS_FILE`);
  const stopWatching = tokens && security.tokensFile ? watchTokensFile(security.tokensFile, tokens, (line) => logger.warn(line)) : () => undefined;
  const maxMessageBytes = security.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  const tls = security.tls;
  // With the files' paths the material is re-read when they change (a renewed certificate); else as given.
  const watched = tls?.files ? new WatchedTlsFiles(tls.files, tls, (line) => logger.warn(line)) : undefined;
  const credentials = watched
    ? // (grpc-js names its first parameter the CA provider, but its constructor takes it as the identity.)
      experimental.createCertificateProviderServerCredentials(watched, tls?.ca ? watched : null, tls?.ca !== undefined)
    : tls
      ? ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== undefined)
      : ServerCredentials.createInsecure();
  return {
    health,
    tokens,
    ...(watched ? { tls: watched } : {}),
    close: () => {
      stopWatching();
      watched?.close();
    },
    options: {
      transport: Transport.GRPC,
      options: {
        url,
        package: 'xuanyuan.v1',
        protoPath: protoFiles,
        loader: { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] },
        maxReceiveMessageLength: maxMessageBytes,
        maxSendMessageLength: maxMessageBytes,
        credentials,
        // NestJS builds `new Server({ ...channelOptions, ... })`: grpc-js server options, interceptors included.
        channelOptions: tokens ? { interceptors: [bearerTokenInterceptor(tokens)] } : {},
        // Reflection describes every service added here, the health service included, with
        // the .proto's own names (see ./reflection); NestJS's `pkg` has camelCase names.
        onLoadPackageDefinition: (_pkg: PackageDefinition, server: Pick<Server, 'addService'>) => {
          reflectionService(protoFiles, [PROTO_ROOT]).addToServer(server);
          health.addToServer(server as Server);
        },
      },
    },
  };
}
