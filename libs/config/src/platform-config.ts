import { z } from 'zod';
import { GrpcEnv } from './grpc-env';
import { envInt, envUrl } from './load-config';

/**
 * Settings every service shares: Redis (BullMQ, run registry, run events) and the
 * artifact store. Each app extends this schema with its own ports.
 */
export const PlatformEnv = z.object({
  XYP_REDIS_URL: envUrl(['redis', 'rediss']).default('redis://127.0.0.1:6379'),
  /** Key prefix of every BullMQ queue and run key; tests use their own. */
  XYP_QUEUE_PREFIX: z.string().regex(/^[a-zA-Z0-9_-]+$/, 'letters, digits, _ and - only').default('xyp'),
  XYP_JOB_ATTEMPTS: envInt(1, 100).default(3),
  XYP_JOB_BACKOFF_MS: envInt(10, 3_600_000).default(2_000),
  XYP_WORKER_CONCURRENCY: envInt(1, 64).default(1),
  XYP_WORKER_LOCK_MS: envInt(1_000, 3_600_000).default(30_000),
  XYP_WORKER_STALLED_INTERVAL_MS: envInt(500, 3_600_000).default(30_000),
  XYP_STORE: z.enum(['local', 's3'], { error: 'must be local or s3' }).default('local'),
  XYP_STORE_DIR: z.string().min(1).default('.xyp/store'),
  XYP_S3_ENDPOINT: envUrl(['http', 'https']).default('http://127.0.0.1:9000'),
  XYP_S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{2,62}$/, 'must be a valid S3 bucket name').default('xuanyuan'),
  XYP_S3_ACCESS_KEY: z.string().default('minioadmin'),
  XYP_S3_SECRET_KEY: z.string().default('minioadmin'),
  XYP_S3_REGION: z.string().default('us-east-1'),
  /**
   * How a manifest commit on S3 stays atomic: `on` a conditional PUT (`If-None-Match: *`), `off` a
   * Redis lock (`XYP_REDIS_URL`), `auto` probes the endpoint once and uses the lock where it
   * ignores the condition (s3rver, older MinIO).
   */
  XYP_S3_CONDITIONAL_WRITES: z.enum(['auto', 'on', 'off'], { error: 'must be auto, on or off' }).default('auto'),
  /** Largest HTTP request body a service accepts (JSON or form); 413 above it. */
  XYP_HTTP_MAX_BODY_BYTES: envInt(1024, 1024 * 1024 * 1024).default(1024 * 1024),
  /**
   * Names this process in `/readyz` (with its pid), so a launcher can tell the process it
   * started from a stale one answering on the same port; `<hostname>:<pid>` when unset.
   */
  XYP_INSTANCE_ID: z.string().optional(),
  ...GrpcEnv.shape,
});
export type PlatformEnv = z.output<typeof PlatformEnv>;

export interface RedisSettings {
  host: string;
  port: number;
  password?: string;
  username?: string;
  db: number;
  tls: boolean;
}

export function redisSettings(url: string): RedisSettings {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    db: Number(parsed.pathname.replace('/', '') || 0),
    tls: parsed.protocol === 'rediss:',
  };
}

export type StoreSettings =
  | { kind: 'local'; root: string }
  | {
      kind: 's3';
      endPoint: string;
      port: number;
      useSSL: boolean;
      accessKey: string;
      secretKey: string;
      bucket: string;
      region: string;
      conditionalWrites: 'auto' | 'on' | 'off';
      /** Where the commit lock lives when the endpoint has no conditional writes. */
      commitLock: { redisUrl: string; prefix: string };
    };

export function storeSettings(env: PlatformEnv): StoreSettings {
  if (env.XYP_STORE === 'local') return { kind: 'local', root: env.XYP_STORE_DIR };
  const endpoint = new URL(env.XYP_S3_ENDPOINT);
  const useSSL = endpoint.protocol === 'https:';
  return {
    kind: 's3',
    endPoint: endpoint.hostname,
    port: Number(endpoint.port || (useSSL ? 443 : 80)),
    useSSL,
    accessKey: env.XYP_S3_ACCESS_KEY,
    secretKey: env.XYP_S3_SECRET_KEY,
    bucket: env.XYP_S3_BUCKET,
    region: env.XYP_S3_REGION,
    conditionalWrites: env.XYP_S3_CONDITIONAL_WRITES,
    commitLock: { redisUrl: env.XYP_REDIS_URL, prefix: env.XYP_QUEUE_PREFIX },
  };
}
