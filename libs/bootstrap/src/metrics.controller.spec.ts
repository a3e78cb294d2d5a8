/**
 * `/metrics` of a service started the way every service starts (`startService`, real HTTP, real
 * Redis under its own key prefix, a local store): the shared registry, the queues the service
 * works and produces to, and the bearer token of `XYP_METRICS_TOKEN`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformEnv, envPort, redisSettings } from '@xyp/config';
import { METRICS_REGISTRY } from '@xyp/telemetry';
import { TEST_REDIS_URL, dropPrefix, testPrefix } from '@xyp/testing';
import { PlatformModule } from './platform.module';
import { startService, type RunningService } from './run-service';

const prefix = testPrefix('metrics-endpoint');
const storeDir = mkdtempSync(join(tmpdir(), 'xyp-metrics-endpoint-'));
const redis = new Redis(TEST_REDIS_URL);
const TOKEN = 'metrics-token-0123456789';
const TestEnv = PlatformEnv.extend({ XYP_TEST_HTTP_PORT: envPort().default(0) });
let service: RunningService<typeof TestEnv>;

beforeAll(async () => {
  service = await startService(
    {
      name: 'test',
      env: TestEnv,
      // Produces to corpus.inspect, works no queue of its own: only that queue is exported.
      module: (env) => PlatformModule.forRoot(env, { workers: [], queues: ['corpus.inspect'] }),
      httpPort: (env) => env.XYP_TEST_HTTP_PORT,
    },
    { XYP_REDIS_URL: TEST_REDIS_URL, XYP_QUEUE_PREFIX: prefix, XYP_STORE_DIR: storeDir, XYP_METRICS_TOKEN: TOKEN },
  );
});

afterAll(async () => {
  await service?.app.close();
  await dropPrefix(redis, prefix);
  redis.disconnect();
  rmSync(storeDir, { recursive: true, force: true });
});

const scrape = (authorization?: string) => fetch(`${service.httpUrl}/metrics`, authorization ? { headers: { authorization } } : {});

describe('/metrics', () => {
  it('refuses a scrape without the bearer token of XYP_METRICS_TOKEN, or with another one, with 401 and WWW-Authenticate', async () => {
    const none = await scrape();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect(((await none.json()) as { message: string }).message).toBe('/metrics wants Authorization: Bearer <XYP_METRICS_TOKEN>');
    const wrong = await scrape('Bearer not-the-token');
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { message: string }).message).toBe('/metrics: the bearer token does not match XYP_METRICS_TOKEN');
  });

  it("serves process metrics, the app's own metrics on the shared registry and the job counts and oldest waiting job of the queues it produces to", async () => {
    const registry = service.app.get<Registry>(METRICS_REGISTRY);
    new Counter({ name: 'xyp_test_things_total', help: 'things the app counts', registers: [registry] }).inc(3);
    const queue = new Queue('corpus.inspect', { connection: { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null }, prefix });
    await queue.add('corpus.inspect', { runId: 'm1', inputKey: 'k' }, { jobId: 'm1.corpus.inspect', timestamp: Date.now() - 30_000 });
    await queue.close();

    const response = await scrape(`Bearer ${TOKEN}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain;.*version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('xyp_test_things_total 3');
    expect(text).toContain('bullmq_job_count{queue="corpus.inspect", state="waiting"} 1');
    expect(text).not.toContain('queue="corpus.bucket"');
    const age = Number(/xyp_queue_oldest_waiting_seconds\{queue="corpus\.inspect"\} (\S+)/.exec(text)?.[1]);
    expect(age).toBeGreaterThanOrEqual(30);
    expect(text.match(/^# TYPE bullmq_job_count gauge$/gm)).toHaveLength(1);
  });
});
