/**
 * The gateway's response cache. A key is the SHA-256 of the canonical JSON (keys sorted, undefined
 * dropped) of the model (config name and model id) and the whole request: messages and every
 * sampling parameter (temperature, top_p, max_tokens, n, seed, stop, response_format, …), so two
 * requests share an answer only when everything the endpoint sees is the same. Values are opaque
 * strings to a cache (the gateway stores JSON). Only successful answers are written.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';

export interface ResponseCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

/** JSON with object keys sorted at every level and undefined members dropped. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : sortKeys(v)));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sortKeys(v);
  }
  return out;
}

/** The cache key of a request to a model: hex SHA-256 of `canonicalJson({model: {name, id}, request})`. */
export function responseCacheKey(model: { name: string; model: string }, request: object): string {
  return createHash('sha256')
    .update(canonicalJson({ model: { name: model.name, id: model.model }, request }))
    .digest('hex');
}

export interface RedisResponseCacheOptions {
  /** Keys are `${prefix}:${key}`. */
  prefix: string;
  /** Expiry of each entry; none when absent. */
  ttlSeconds?: number;
}

/** Entries in Redis under a key prefix, with an optional TTL. The connection is the caller's (it opens and closes it). */
export class RedisResponseCache implements ResponseCache {
  constructor(
    private readonly redis: Redis,
    private readonly options: RedisResponseCacheOptions,
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(`${this.options.prefix}:${key}`)) ?? undefined;
  }

  async set(key: string, value: string): Promise<void> {
    const full = `${this.options.prefix}:${key}`;
    if (this.options.ttlSeconds !== undefined) await this.redis.set(full, value, 'EX', this.options.ttlSeconds);
    else await this.redis.set(full, value);
  }
}

/**
 * One file per entry, `{dir}/{key[0..2]}/{key}.json`, written to a temporary file beside it and
 * renamed into place, so a reader never sees half an entry and concurrent writers of one key leave
 * one whole value.
 */
export class DirectoryResponseCache implements ResponseCache {
  constructor(readonly dir: string) {}

  private path(key: string): string {
    if (!/^[A-Za-z0-9_-]{3,200}$/.test(key)) throw new Error(`DirectoryResponseCache: key ${JSON.stringify(key.slice(0, 80))} is not a file-safe name`);
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  async get(key: string): Promise<string | undefined> {
    try {
      return await readFile(this.path(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async set(key: string, value: string): Promise<void> {
    const path = this.path(key);
    await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true });
    const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, value);
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }
}
