import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { WORKSPACE_ROOT } from './services';

/** True when a Redis server answers PING at the URL. */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
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

/**
 * Makes sure Redis answers at the URL: starts a local `redis-server` (installing it
 * with apt where missing) through tools/scripts/ensure-redis.sh when none runs.
 */
export async function ensureRedis(url: string): Promise<'running' | 'started'> {
  if (await redisAnswers(url)) return 'running';
  const { port, hostname } = new URL(url);
  if (!['127.0.0.1', 'localhost', '::1'].includes(hostname)) {
    throw new Error(`no Redis answers at ${url}, and it is not local, so it cannot be started here`);
  }
  await promisify(execFile)('bash', [join(WORKSPACE_ROOT, 'tools', 'scripts', 'ensure-redis.sh'), port || '6379']);
  if (!(await redisAnswers(url))) throw new Error(`redis-server started but ${url} does not answer`);
  return 'started';
}
