import type { ConnectionOptions, DefaultJobOptions, WorkerOptions } from 'bullmq';
import { redisSettings, type PlatformEnv } from '@xyp/config';

/** Everything the queue layer needs, derived once from the validated environment. */
export interface QueueSettings {
  redisUrl: string;
  prefix: string;
  connection: ConnectionOptions;
  defaultJobOptions: DefaultJobOptions;
  worker: Pick<WorkerOptions, 'concurrency' | 'lockDuration' | 'stalledInterval' | 'maxStalledCount'>;
}

export function queueSettings(env: PlatformEnv): QueueSettings {
  const redis = redisSettings(env.XYP_REDIS_URL);
  return {
    redisUrl: env.XYP_REDIS_URL,
    prefix: env.XYP_QUEUE_PREFIX,
    connection: {
      host: redis.host,
      port: redis.port,
      username: redis.username,
      password: redis.password,
      db: redis.db,
      ...(redis.tls ? { tls: {} } : {}),
      // Workers must wait for Redis rather than fail a command while it reconnects
      // (bullmq "going to production").
      maxRetriesPerRequest: null,
    },
    defaultJobOptions: {
      attempts: env.XYP_JOB_ATTEMPTS,
      // Exponential backoff with jitter: delay * 2^(attempt-1), each drawn in [delay/2, delay].
      backoff: { type: 'exponential', delay: env.XYP_JOB_BACKOFF_MS, jitter: 0.5 },
      removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
      removeOnFail: { age: 30 * 24 * 3600 },
    },
    worker: {
      concurrency: env.XYP_WORKER_CONCURRENCY,
      lockDuration: env.XYP_WORKER_LOCK_MS,
      stalledInterval: env.XYP_WORKER_STALLED_INTERVAL_MS,
      // A job whose worker died is moved back to wait once, then failed, so a job that
      // crashes its worker every time does not loop forever.
      maxStalledCount: 2,
    },
  };
}
