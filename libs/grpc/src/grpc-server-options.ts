import { join } from 'node:path';
import type { Server } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { HealthImplementation } from 'grpc-health-check';
import { Transport, type GrpcOptions } from '@nestjs/microservices';
import { reflectionService } from './reflection';

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
 * Messages up to this size are accepted (grpc-js defaults to 4 MB); SubmitRun may
 * carry an uploaded corpus inline.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * NestJS gRPC transport options for a server of the given protos, with the standard
 * health service (`grpc.health.v1.Health`, service '' = the whole server) and server
 * reflection (so grpcurl can list and call services without the .proto files).
 */
export function grpcServerOptions(
  url: string,
  protoFiles: string[],
  servingServices: string[],
): { options: GrpcOptions; health: HealthImplementation } {
  const health = new HealthImplementation(
    Object.fromEntries([['', 'SERVING'], ...servingServices.map((name) => [name, 'SERVING'])]),
  );
  return {
    health,
    options: {
      transport: Transport.GRPC,
      options: {
        url,
        package: 'xuanyuan.v1',
        protoPath: protoFiles,
        loader: { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] },
        maxReceiveMessageLength: MAX_MESSAGE_BYTES,
        maxSendMessageLength: MAX_MESSAGE_BYTES,
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
