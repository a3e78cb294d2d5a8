import { Global, Inject, Injectable, Logger, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { BullModule } from '@nestjs/bullmq';
import { Redis } from 'ioredis';
import type { StageName } from '@xyp/contracts';
import { RunEvents, RunPlans, RunRegistry, keepReconnecting, redisAddress } from '@xyp/runs';
import type { QueueSettings } from './queue-settings';
import { StageProducer } from './stage-producer';
import { StageRuntime } from './stage-runtime';
import { WorkerRegistration } from './worker-registration';
import { EXPECTED_STAGES, QUEUE_SETTINGS, REDIS_CLIENT, RUN_FLOW } from './tokens';

/**
 * The shared client (run records, events, plans): it reconnects for ever (100 ms, 200 ms, …
 * then every second), and a command waits through 20 reconnect attempts (about 15 s) before
 * it fails, so a Redis restart or failover of a few seconds fails nothing, while a Redis that
 * stays away fails requests instead of hanging them (callers that must ride through longer
 * outages retry: `retryWhileRedisUnreachable`). Blocking reads use connections of their own
 * (`RunEvents.follow`, BullMQ's workers with `maxRetriesPerRequest: null`).
 */
const SHARED_CLIENT_OPTIONS = { maxRetriesPerRequest: 20, retryStrategy: keepReconnecting } as const;

/** The shared client; while Redis is away it says so on the log (once every 10 s), not as unhandled errors. */
function sharedRedisClient(url: string): Redis {
  const redis = new Redis(url, SHARED_CLIENT_OPTIONS);
  const logger = new Logger('Redis');
  let loggedAt = 0;
  redis.on('error', (error: Error) => {
    if (Date.now() - loggedAt < 10_000) return;
    loggedAt = Date.now();
    logger.warn(`Redis at ${redisAddress(redis)}: ${error.message}; reconnecting`);
  });
  return redis;
}

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
        { provide: REDIS_CLIENT, useFactory: () => sharedRedisClient(settings.redisUrl) },
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
