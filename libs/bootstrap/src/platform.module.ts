import { Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { storeSettings, type PlatformEnv } from '@xyp/config';
import type { StageName } from '@xyp/contracts';
import { QueueModule, queueSettings } from '@xyp/queue';
import { StorageModule } from '@xyp/storage';
import { HealthController, SERVICE_INSTANCE, serviceInstance } from './health.controller';

export interface PlatformModuleOptions {
  /** Queues the app produces to, besides those of its own workers. */
  queues?: readonly StageName[];
  /** Stages this app's workers handle; each must have exactly one processor among `providers`. */
  workers: readonly StageName[];
  /** The app's own providers: its stage processors and services. */
  providers?: Provider[];
  /** The app's own HTTP controllers, beside the health routes (e.g. its `/metrics`). */
  controllers?: Type[];
}

/**
 * What every service imports: the artifact store, BullMQ with the app's queues and
 * workers, the run registry and events, and the health endpoints. A worker service's
 * whole module is one `PlatformModule.forRoot(env, { workers, providers })`.
 */
@Module({})
export class PlatformModule {
  static forRoot(env: PlatformEnv, stages: PlatformModuleOptions): DynamicModule {
    return {
      module: PlatformModule,
      providers: [{ provide: SERVICE_INSTANCE, useValue: serviceInstance(env) }, ...(stages.providers ?? [])],
      imports: [
        StorageModule.forRoot(storeSettings(env)),
        QueueModule.forRoot({ settings: queueSettings(env), queues: stages.queues ?? [], workers: stages.workers }),
      ],
      controllers: [HealthController, ...(stages.controllers ?? [])],
    };
  }
}
