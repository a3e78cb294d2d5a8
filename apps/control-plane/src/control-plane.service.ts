import type { INestApplication } from '@nestjs/common';
import type { ServiceDefinition } from '@xyp/bootstrap';
import { grpcServerSecurity } from '@xyp/config';
import { PIPELINE_PROTO, REWARD_PROTO, grpcServerOptions } from '@xyp/grpc';
import { ControlPlaneEnv } from './control-plane.env';
import { ControlPlaneModule } from './control-plane.module';

/**
 * How the control plane starts: HTTP (Bull Board, metrics, health) plus the gRPC server, with the
 * bearer tokens and TLS of `XYP_GRPC_*` (health and reflection stay open for probes).
 */
export const controlPlaneService: ServiceDefinition<typeof ControlPlaneEnv> = {
  name: 'control-plane',
  env: ControlPlaneEnv,
  module: (env) => ControlPlaneModule.forRoot(env),
  httpPort: (env) => env.XYP_CONTROL_PLANE_HTTP_PORT,
  configure: async (app: INestApplication, env) => {
    const grpc = grpcServerOptions(`0.0.0.0:${env.XYP_CONTROL_PLANE_GRPC_PORT}`, [PIPELINE_PROTO, REWARD_PROTO], ['xuanyuan.v1.PipelineService'], grpcServerSecurity(env));
    app.connectMicroservice(grpc.options, { inheritAppConfig: true });
    await app.startAllMicroservices();
  },
};
