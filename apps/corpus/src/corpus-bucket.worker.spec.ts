import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InputPlan } from '@xyp/bucketing';
import { PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS, loadConfig } from '@xyp/config';
import { FAN_OUT_STATE_KEY, StageProducer } from '@xyp/queue';
import { RunEvents } from '@xyp/runs';
import { ARTIFACT_STORE, type ArtifactStore } from '@xyp/storage';
import { TEST_REDIS_URL, dropPrefix, eventually, startTestS3, testPrefix, type TestS3 } from '@xyp/testing';
import { CorpusBucketWorker } from './corpus-bucket.worker';

const SAMPLE = join(__dirname, '..', '..', '..', 'data', 'sample', 'corpus.jsonl');

/**
 * The corpus.bucket worker in this process, on real BullMQ (Redis) and an S3 store over HTTP
 * (s3rver, which records every request): the stage job plans, waits for its parts, and is run
 * again by BullMQ once they are done. That second pass must not read the input again.
 */
describe('corpus.bucket worker: the stage job plans once', () => {
  const prefix = testPrefix('corpus-plan-once');
  const redis = new Redis(TEST_REDIS_URL);
  let s3: TestS3;
  let app: INestApplicationContext;

  beforeAll(async () => {
    s3 = await startTestS3('xyp-corpus-worker');
    const env = loadConfig(SERVICE_ENVS.corpus, {
      XYP_REDIS_URL: TEST_REDIS_URL,
      XYP_QUEUE_PREFIX: prefix,
      XYP_STORE: 's3',
      XYP_S3_ENDPOINT: s3.endpoint,
      XYP_S3_BUCKET: s3.bucket,
      XYP_S3_ACCESS_KEY: s3.accessKey,
      XYP_S3_SECRET_KEY: s3.secretKey,
      XYP_JOB_BACKOFF_MS: '200',
    });
    app = await NestFactory.createApplicationContext(PlatformModule.forRoot(env, { workers: ['corpus.bucket'], providers: [CorpusBucketWorker] }), { logger: false });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await s3?.stop();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  }, 30_000);

  it('reads the input once to plan, keeps the plan on the job, and merges on resume without reading it again', async () => {
    const runId = 'run-plan-once';
    const store = app.get<ArtifactStore>(ARTIFACT_STORE);
    const lines = readFileSync(SAMPLE, 'utf8').split('\n').filter(Boolean).slice(0, 300);
    const input = Buffer.from(`${lines.join('\n')}\n`);
    const entry = await store.putObject(runId, 'input', 'corpus.jsonl', input);

    const producer = app.get(StageProducer);
    const job = await producer.enqueue('corpus.bucket', { runId, inputKey: entry.key, config: { windowLines: 50, shardLines: 100, bucketLengths: [256, 512, 1024], windowTokens: 8192 } });
    const manifest = await eventually(async () => (await store.readManifest(runId, 'corpus.bucket')) ?? undefined, 90_000, 'corpus.bucket manifest');
    expect(manifest.result).toMatchObject({ documentsIn: 300, kept: 300, shards: 3 });

    // The stage job did run twice: planned (and waited), then resumed to merge.
    const events = await app.get(RunEvents).history(runId);
    expect(events.filter((e) => e.type === 'stage-started')).toHaveLength(1);
    expect(events.some((e) => e.type === 'stage-progress' && e.message === 'every part completed; merging')).toBe(true);

    // The plan is on the job's data, next to the payload.
    const stored = (await producer.queue('corpus.bucket').getJob(String(job.id)))!.data as Record<string, unknown>;
    const plan = stored[FAN_OUT_STATE_KEY] as InputPlan;
    expect(plan).toMatchObject({ lines: 300, bytes: input.length, gzip: false });
    expect(plan.shards).toHaveLength(3);

    // Every read of the input, as the S3 endpoint saw it: one whole GET (the plan, on the first
    // pass only) and one ranged GET per part for exactly its shard. A re-plan on resume would
    // show a second whole GET.
    const reads = s3.requests.filter((r) => r.method === 'GET' && r.key === entry.key);
    expect(reads.filter((r) => r.range === null)).toEqual([{ method: 'GET', key: entry.key, range: null, status: 200, bytes: input.length }]);
    const ranged = reads.filter((r) => r.range !== null).sort((a, b) => a.range!.localeCompare(b.range!, 'en', { numeric: true }));
    expect(ranged).toEqual(plan.shards.map((shard) => ({ method: 'GET', key: entry.key, range: `bytes=${shard.startByte}-${shard.endByte! - 1}`, status: 206, bytes: shard.endByte! - shard.startByte! })));
    expect(reads.reduce((sum, r) => sum + r.bytes, 0)).toBe(2 * input.length);
    console.info(`input ${input.length} bytes: coordinator read ${reads.filter((r) => r.range === null).map((r) => r.bytes).join(', ')} once; parts read ${ranged.map((r) => r.bytes).join(', ')}`);
  }, 120_000);
});
