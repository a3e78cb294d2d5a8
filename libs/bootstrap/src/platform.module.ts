import { Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import type { Registry } from 'prom-client';
import { storeSettings, type PlatformEnv } from '@xyp/config';
import type { StageName } from '@xyp/contracts';
import { QueueModule, queueSettings } from '@xyp/queue';
import { StorageModule } from '@xyp/storage';
import { METRICS_REGISTRY, STAGE_JOB_METRICS, StageJobMetrics, metricsRegistry } from '@xyp/telemetry';
import { HealthController, SERVICE_INSTANCE, serviceInstance } from './health.controller';
import { METRICS_QUEUES, MetricsController } from './metrics.controller';
import { RpcTracingInterceptor } from './rpc-tracing.interceptor';

export interface PlatformModuleOptions {
  /** Queues the app produces to, besides those of its own workers. */
  queues?: readonly StageName[];
  /** Stages this app's workers handle; each must have exactly one processor among `providers`. */
  workers: readonly StageName[];
  /** The app's own providers: its stage processors and services. */
  providers?: Provider[];
  /** The app's own HTTP controllers, beside the health and metrics routes. */
  controllers?: Type[];
}

/**
 * What every service imports: the artifact store, BullMQ with the app's queues and
 * workers, the run registry and events, the health endpoints and `/metrics` (one registry per
 * process, `METRICS_REGISTRY`, which apps add their own metrics to; the stage workers record on it
 * through `STAGE_JOB_METRICS`; the queues the app works and produces to), and with tracing on a
 * server span around every gRPC call. A worker service's whole module is one
 * `PlatformModule.forRoot(env, { workers, providers })`.
 */
@Module({})
export class PlatformModule {
  static forRoot(env: PlatformEnv, stages: PlatformModuleOptions): DynamicModule {
    return {
      module: PlatformModule,
      providers: [
        { provide: SERVICE_INSTANCE, useValue: serviceInstance(env) },
        { provide: METRICS_REGISTRY, useFactory: metricsRegistry },
        { provide: STAGE_JOB_METRICS, useFactory: (registry: Registry) => new StageJobMetrics(registry), inject: [METRICS_REGISTRY] },
        { provide: METRICS_QUEUES, useValue: [...new Set([...stages.workers, ...(stages.queues ?? [])])] },
        { provide: APP_INTERCEPTOR, useClass: RpcTracingInterceptor },
        ...(stages.providers ?? []),
      ],
      exports: [METRICS_REGISTRY, STAGE_JOB_METRICS],
      imports: [
        StorageModule.forRoot(storeSettings(env)),
        QueueModule.forRoot({ settings: queueSettings(env), queues: stages.queues ?? [], workers: stages.workers }),
      ],
      controllers: [HealthController, MetricsController, ...(stages.controllers ?? [])],
    };
  }
}
