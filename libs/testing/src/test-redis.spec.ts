import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ENSURE_REDIS_SCRIPT, TEST_REDIS_URL, TestRedisUnavailableError, ensureTestRedis, freePort, redisPing, testRedisUrl } from './index';

const WORKSPACE_ROOT = join(__dirname, '..', '..', '..');

/** A TCP port taken by something that is not Redis (it drops every connection), so no redis-server can start there. */
async function occupiedPort(): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** Stops a redis-server these tests started (never the shared one). */
async function shutdown(port: number): Promise<void> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
  } finally {
    redis.disconnect();
  }
}

/** The README's test command, `vitest run`, on one small spec, in a fresh process. */
function vitestRun(env: Record<string, string | undefined>): Promise<{ code: number | null; output: string; ms: number }> {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('VITEST') && name !== 'XYP_TEST_REDIS_URL') childEnv[name] = value;
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete childEnv[name]; else childEnv[name] = value;
  const started = Date.now();
  const child = spawn(process.execPath, [join(WORKSPACE_ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'libs/config/src/load-config.spec.ts'], {
    cwd: WORKSPACE_ROOT,
    env: { ...childEnv, NO_COLOR: '1', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output, ms: Date.now() - started })));
}

describe('the tests\' Redis (Vitest globalSetup)', () => {
  const servers: Server[] = [];
  const startedPorts: number[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });
  afterAll(async () => {
    for (const port of startedPorts) await shutdown(port);
  });

  it('follows XYP_TEST_REDIS_URL, then XYP_REDIS_URL, then 127.0.0.1:6379', () => {
    expect(testRedisUrl({ XYP_TEST_REDIS_URL: 'redis://127.0.0.1:7001', XYP_REDIS_URL: 'redis://127.0.0.1:7002' })).toBe('redis://127.0.0.1:7001');
    expect(testRedisUrl({ XYP_REDIS_URL: 'redis://127.0.0.1:7002' })).toBe('redis://127.0.0.1:7002');
    expect(testRedisUrl({})).toBe('redis://127.0.0.1:6379');
  });

  it('only PINGs when Redis already answers', async () => {
    const started = Date.now();
    expect(await ensureTestRedis(TEST_REDIS_URL, { script: '/nonexistent/ensure-redis.sh' })).toBe('running');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('starts redis-server through ensure-redis.sh on a local port where none answers', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    expect(await redisPing(url)).toBe(false);
    const lines: string[] = [];
    startedPorts.push(port);
    expect(await ensureTestRedis(url, { log: (line) => lines.push(line) })).toBe('started');
    expect(await redisPing(url)).toBe(true);
    const redis = new Redis(url);
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    redis.disconnect();
    expect(lines.join('\n')).toContain(`starting one for the tests (tools/scripts/ensure-redis.sh ${port})`);
  });

  it('fails within seconds, in one line naming the address and what to do, when no redis-server can start there', async () => {
    const { port, server } = await occupiedPort();
    servers.push(server);
    const started = Date.now();
    const error = await ensureTestRedis(`redis://127.0.0.1:${port}`, { script: ENSURE_REDIS_SCRIPT, log: () => undefined }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(error).toBeInstanceOf(TestRedisUnavailableError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toContain(`tests need Redis at 127.0.0.1:${port}`);
    expect(message).toContain('Address already in use');
    expect(message).toContain('XYP_TEST_REDIS_URL');
  });

  it('does not try to start a Redis that is not local', async () => {
    const error = await ensureTestRedis('redis://redis.invalid:6379', { script: '/nonexistent/ensure-redis.sh' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TestRedisUnavailableError);
    expect((error as Error).message).toContain('tests need Redis at redis.invalid:6379, but none answers there and it is not local');
  });

  it('`vitest run` stops at once with that line when the configured XYP_REDIS_URL cannot be reached', async () => {
    const { port, server } = await occupiedPort();
    servers.push(server);
    const result = await vitestRun({ XYP_REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(result.code).not.toBe(0);
    expect(result.output).toContain(`TestRedisUnavailableError: tests need Redis at 127.0.0.1:${port}, but none answers`);
    expect(result.output).not.toContain('Test Files');
    expect(result.ms).toBeLessThan(30_000);
  }, 60_000);

  it('`vitest run` starts the Redis it needs on a free local port, then runs the tests', async () => {
    const port = await freePort();
    startedPorts.push(port);
    const result = await vitestRun({ XYP_TEST_REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(result.output).toContain(`redis-server started on 127.0.0.1:${port}`);
    expect(result.code).toBe(0);
    expect(await redisPing(`redis://127.0.0.1:${port}`)).toBe(true);
  }, 60_000);
});
