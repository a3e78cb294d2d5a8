import { z } from 'zod';

/** S3's floor for every multipart part but the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's ceiling for one part (and for a single-request PUT or copy). */
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/**
 * What the S3 store holds in memory per upload before sending a part. 16 MiB keeps a worker's
 * memory small while still allowing 160 GB objects within S3's 10,000-part limit.
 */
export const DEFAULT_PART_SIZE = 16 * 1024 * 1024;

export const LocalStoreOptions = z.strictObject({
  kind: z.literal('local'),
  root: z.string().min(1),
});
export type LocalStoreOptions = z.input<typeof LocalStoreOptions>;

export const S3StoreOptions = z.strictObject({
  kind: z.literal('s3'),
  endPoint: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  useSSL: z.boolean(),
  accessKey: z.string(),
  secretKey: z.string(),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'S3 bucket name: 3-63 characters of a-z, 0-9, . and -'),
  region: z.string().min(1).optional(),
  /** Bytes buffered per multipart part; objects that fit in one part are sent with one PUT. */
  partSize: z.number().int().min(MIN_PART_SIZE).max(MAX_PART_SIZE).optional(),
  /**
   * How `commitManifest` stays atomic: `on` a conditional PUT (`If-None-Match: *`, S3 and MinIO
   * since 2024), `off` the Redis `commitLock`, `auto` (default) probes the endpoint once and takes
   * the lock where the condition is ignored.
   */
  conditionalWrites: z.enum(['auto', 'on', 'off']).optional(),
  /** Redis for the commit lock (keys `<prefix>:manifest-commit-lock:…`, `ttlMs` each, 30 s by default). */
  commitLock: z
    .strictObject({ redisUrl: z.string().min(1), prefix: z.string().min(1), ttlMs: z.number().int().min(1000).optional() })
    .optional(),
});
export type S3StoreOptions = z.input<typeof S3StoreOptions>;

export const ArtifactStoreOptions = z.discriminatedUnion('kind', [LocalStoreOptions, S3StoreOptions]);
export type ArtifactStoreOptions = z.input<typeof ArtifactStoreOptions>;

/** Parses store options, reporting every problem by path; values are never echoed, as they hold secrets. */
export function parseStoreOptions<T extends z.ZodType>(schema: T, options: unknown): z.output<T> {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
    throw new TypeError(`invalid artifact store options: ${problems.join('; ')}`);
  }
  return parsed.data;
}
