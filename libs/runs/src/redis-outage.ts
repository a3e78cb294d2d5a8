import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';

/**
 * How long a watcher rides through Redis not answering (down, restarting, frozen) before it gives
 * up with {@link RedisUnreachableError}: long enough for a restart or a failover, short enough that
 * a watch never hangs on a Redis that is gone.
 */
export const REDIS_OUTAGE_LIMIT_MS = 60_000;

/**
 * ioredis `retryStrategy` of a connection that must outlive an outage: reconnect after 100 ms,
 * 200 ms, … then every second, for ever (a strategy returning null would give up).
 */
export function keepReconnecting(times: number): number {
  return Math.min(times * 100, 1000);
}

/** Redis did not answer at `address` for `forMs`. */
export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError';
  constructor(
    readonly address: string,
    readonly forMs: number,
    cause?: unknown,
  ) {
    super(
      `Redis is unreachable at ${address}: no answer for ${Math.round(forMs / 1000)} s${cause instanceof Error ? ` (last: ${cause.message.split('\n')[0]})` : ''}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** `host:port` (or the socket path) a client connects to, for messages; never credentials. */
export function redisAddress(redis: Redis): string {
  const { path, host, port } = redis.options;
  return path || `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * True for an error that says Redis could not be reached, not that the command was wrong: the
 * client gave up reconnecting (`MaxRetriesPerRequestError`), the socket closed or was refused, or
 * the server is still loading its dataset after a restart.
 */
export function isRedisConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError' || error instanceof RedisUnreachableError) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  return /Connection is closed|Stream isn't writeable|enableOfflineQueue options is false|^LOADING /.test(error.message);
}

export interface RedisRetryOptions {
  /** Where Redis is, for the error. */
  address: string;
  /** Give up once this long has passed since the first try (default {@link REDIS_OUTAGE_LIMIT_MS}). */
  limitMs?: number;
  /** The first pause; each next one doubles, up to `maxDelayMs` (defaults 250 ms and 5 s). */
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Stops waiting (the call's result no longer matters); the last error is thrown. */
  signal?: AbortSignal;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `call` again, with exponential backoff, while it fails because Redis cannot be reached, for
 * at most `limitMs`; then throws {@link RedisUnreachableError} naming the address. Any other error
 * is thrown at once.
 */
export async function retryWhileRedisUnreachable<T>(call: () => Promise<T>, options: RedisRetryOptions): Promise<T> {
  const { address, limitMs = REDIS_OUTAGE_LIMIT_MS, firstDelayMs = 250, maxDelayMs = 5000, signal, onRetry } = options;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isRedisConnectionError(error) || signal?.aborted) throw error;
      const elapsed = Date.now() - started;
      if (elapsed >= limitMs) throw new RedisUnreachableError(address, elapsed, error);
      const delayMs = Math.min(firstDelayMs * 2 ** (attempt - 1), maxDelayMs, limitMs - elapsed);
      onRetry?.(error, attempt, delayMs);
      await delay(delayMs, undefined, { signal }).catch(() => undefined); // an abort ends the wait early
    }
  }
}

