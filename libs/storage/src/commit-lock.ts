import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** Deletes the lock only while it still holds this holder's token. */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
/** Extends the lock only while it still holds this holder's token. */
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** One holder's hold on a lock: a random token under the lock's key, `SET NX PX`. */
export interface CommitLease {
  /** Renews the hold for another TTL; false when it expired and may be someone else's now. */
  extend(): Promise<boolean>;
  /** Lets go; false when the hold had already expired (someone else may have held it meanwhile). */
  release(): Promise<boolean>;
}

/**
 * A Redis lock per manifest key, for S3 endpoints without conditional writes: `SET key token NX
 * PX ttl` to take it, compare-and-delete (Lua) to release, so a holder whose hold expired never
 * frees its successor's. The connection is opened on first use and closed by `close()`.
 */
export class RedisCommitLock {
  private redis: Redis | undefined;

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    private readonly ttlMs = 30_000,
  ) {}

  private client(): Redis {
    this.redis ??= new Redis(this.redisUrl, { maxRetriesPerRequest: 3 });
    return this.redis;
  }

  keyFor(name: string): string {
    return `${this.prefix}:manifest-commit-lock:${name}`;
  }

  /** Takes the lock of `name` when free; undefined when another holder has it. */
  async tryAcquire(name: string): Promise<CommitLease | undefined> {
    const redis = this.client();
    const key = this.keyFor(name);
    const token = randomBytes(16).toString('hex');
    const taken = await redis.set(key, token, 'PX', this.ttlMs, 'NX');
    if (taken !== 'OK') return undefined;
    return {
      extend: async () => (await redis.eval(EXTEND, 1, key, token, String(this.ttlMs))) === 1,
      release: async () => (await redis.eval(RELEASE, 1, key, token)) === 1,
    };
  }

  async close(): Promise<void> {
    const redis = this.redis;
    this.redis = undefined;
    if (redis) await redis.quit().catch(() => redis.disconnect());
  }
}
