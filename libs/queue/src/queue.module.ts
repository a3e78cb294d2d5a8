import { Global, Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BullModule } from '@nestjs/bullmq';
import { Redis } from 'ioredis';
import type { StageName } from '@xyp/contracts';
import { RunEvents, RunPlans, RunRegistry } from '@xyp/runs';
import type { QueueSettings } from './queue-settings';
import { StageProducer } from './stage-producer';
import { StageRuntime } from './stage-runtime';
import { WorkerRegistration } from './worker-registration';
import { EXPECTED_STAGES, QUEUE_SETTINGS, REDIS_CLIENT, RUN_FLOW } from './tokens';

/** Closes the shared Redis connection after the workers and queues have closed. */
@Injectable()
class RedisConnectionCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly redis: Redis) {}
  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

export interface QueueModuleOptions {
  settings: QueueSettings;
  /** Queues this app produces to or reads from. */
  queues: readonly StageName[];
  /** Stages this app's workers handle: exactly one processor each. */
  workers: readonly StageName[];
}

/**
 * BullMQ for a NestJS app: one connection config and key prefix, the app's queues, the
 * run flow producer, the run registry, events and plans, and a worker registration that
 * starts workers only when every declared stage has exactly one handler.
 */
@Global()
@Module({})
export class QueueModule {
  static forRoot({ settings, queues, workers }: QueueModuleOptions): DynamicModule {
    const bull = [
      BullModule.forRoot({
        connection: settings.connection,
        prefix: settings.prefix,
        defaultJobOptions: settings.defaultJobOptions,
        extraOptions: { manualRegistration: true },
      }),
      BullModule.registerQueue(...[...new Set([...queues, ...workers])].map((name) => ({ name }))),
      BullModule.registerFlowProducer({ name: RUN_FLOW }),
    ];
    return {
      module: QueueModule,
      global: true,
      imports: [DiscoveryModule, ...bull],
      providers: [
        { provide: QUEUE_SETTINGS, useValue: settings },
        { provide: EXPECTED_STAGES, useValue: workers },
        { provide: REDIS_CLIENT, useFactory: () => new Redis(settings.redisUrl, { maxRetriesPerRequest: 3 }) },
        RedisConnectionCloser,
        { provide: RunRegistry, useFactory: (redis: Redis) => new RunRegistry(redis, settings.prefix), inject: [REDIS_CLIENT] },
        { provide: RunEvents, useFactory: (redis: Redis) => new RunEvents(redis, settings.prefix), inject: [REDIS_CLIENT] },
        { provide: RunPlans, useFactory: (redis: Redis) => new RunPlans(redis, settings.prefix), inject: [REDIS_CLIENT] },
        StageRuntime,
        StageProducer,
        WorkerRegistration,
      ],
      exports: [...bull, QUEUE_SETTINGS, REDIS_CLIENT, RunRegistry, RunEvents, RunPlans, StageRuntime, StageProducer],
    };
  }
}
