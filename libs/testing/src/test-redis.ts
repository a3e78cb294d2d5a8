import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';

// Imported by Vitest's globalSetup, which runs without the workspace's path aliases:
// this file imports only Node and npm packages.

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** tools/scripts/ensure-redis.sh: starts redis-server on a local port, installing it with apt where missing. */
export const ENSURE_REDIS_SCRIPT = join(__dirname, '..', '..', '..', 'tools', 'scripts', 'ensure-redis.sh');

/**
 * The Redis the tests talk to: `XYP_TEST_REDIS_URL`, else `XYP_REDIS_URL` (the
 * platform's), else redis://127.0.0.1:6379.
 */
export function testRedisUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.XYP_TEST_REDIS_URL || env.XYP_REDIS_URL || DEFAULT_REDIS_URL;
}

/** True when a Redis server answers PING at the URL within `timeoutMs`. */
export async function redisPing(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** No Redis answers where the tests need one, and none could be started there. */
export class TestRedisUnavailableError extends Error {
  override name = 'TestRedisUnavailableError';
}

export interface EnsureTestRedisOptions {
  /** The ensure script (default tools/scripts/ensure-redis.sh). */
  script?: string;
  /** How long the script may take, installing included (default 180 s). */
  scriptTimeoutMs?: number;
  /** Where progress lines go (default stderr). */
  log?: (line: string) => void;
}

/**
 * Makes sure Redis answers at `url` before any test runs. When a PING answers, that is
 * all (well under a second). Otherwise, for a local address, runs ensure-redis.sh for
 * its port (starts `redis-server`, installing Debian's package with apt where missing);
 * throws {@link TestRedisUnavailableError} with one line naming the address and what to
 * do when Redis still does not answer.
 */
export async function ensureTestRedis(url: string, options: EnsureTestRedisOptions = {}): Promise<'running' | 'started'> {
  if (await redisPing(url)) return 'running';
  const fix = 'start redis-server there, or set XYP_TEST_REDIS_URL to a Redis that runs';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TestRedisUnavailableError(`tests need Redis, but ${JSON.stringify(url)} (XYP_TEST_REDIS_URL or XYP_REDIS_URL) is not a URL: set it to e.g. redis://127.0.0.1:6379`);
  }
  const where = `${parsed.hostname}:${parsed.port || '6379'}`;
  if (!LOCAL_HOSTS.has(parsed.hostname)) {
    throw new TestRedisUnavailableError(`tests need Redis at ${where}, but none answers there and it is not local, so none can be started for them: ${fix}`);
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const port = parsed.port || '6379';
  log(`no Redis answers at ${where}: starting one for the tests (tools/scripts/ensure-redis.sh ${port})`);
  const why = await runScript(options.script ?? ENSURE_REDIS_SCRIPT, port, options.scriptTimeoutMs ?? 180_000);
  if (await redisPing(url, 2000)) {
    log(`redis-server started on ${where}`);
    return 'started';
  }
  throw new TestRedisUnavailableError(`tests need Redis at ${where}, but none answers and tools/scripts/ensure-redis.sh could not start one (${why ?? 'it exited 0, yet PING gets no answer'}): ${fix}`);
}

/** Runs the ensure script; resolves with why it failed (its last stderr line), or null. */
function runScript(script: string, port: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('bash', [script, port], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      if (!error) return resolve(null);
      const last = String(stderr).trim().split('\n').filter(Boolean).pop();
      if ((error as { killed?: boolean }).killed) return resolve(`it did not finish within ${Math.round(timeoutMs / 1000)} s`);
      resolve(last ?? error.message.split('\n')[0]);
    });
  });
}
