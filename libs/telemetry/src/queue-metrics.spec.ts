/** The queue part of `/metrics` over a real BullMQ queue in a real Redis (own key prefix). */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisSettings } from '@xyp/config';
import { TEST_REDIS_URL, dropPrefix, testPrefix } from '@xyp/testing';
import { mergeExpositions, queueExposition } from './queue-metrics';

const prefix = testPrefix('queue-metrics');
const redis = new Redis(TEST_REDIS_URL);
const connection = { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null };
const queues = [new Queue('corpus.inspect', { connection, prefix }), new Queue('corpus.bucket', { connection, prefix })];

afterAll(async () => {
  await Promise.all(queues.map((q) => q.close()));
  await dropPrefix(redis, prefix);
  redis.disconnect();
});

describe('queueExposition', () => {
  it("exports each queue's BullMQ counts under one # TYPE line per family, and the age of its oldest waiting job", async () => {
    const oldest = await queues[0].add('corpus.inspect', { n: 1 }, { jobId: 'first' });
    await queues[0].add('corpus.inspect', { n: 2 }, { jobId: 'second', timestamp: oldest.timestamp + 60_000 });
    const text = await queueExposition(queues, oldest.timestamp + 90_000);
    expect(text.match(/^# TYPE bullmq_job_count gauge$/gm)).toHaveLength(1);
    expect(text.match(/^# TYPE bullmq_job_completed_total counter$/gm)).toHaveLength(1);
    expect(text).toContain('bullmq_job_count{queue="corpus.inspect", state="waiting"} 2');
    expect(text).toContain('bullmq_job_count{queue="corpus.bucket", state="waiting"} 0');
    expect(text).toContain('xyp_queue_oldest_waiting_seconds{queue="corpus.inspect"} 90');
    expect(text).toContain('xyp_queue_oldest_waiting_seconds{queue="corpus.bucket"} 0');
  });
});

describe('mergeExpositions', () => {
  it('keeps the first HELP and TYPE of a family and every sample in order', () => {
    const a = '# HELP m help\n# TYPE m gauge\nm{q="a"} 1';
    const b = '# HELP m help\n# TYPE m gauge\nm{q="b"} 2\n# TYPE n counter\nn 3';
    expect(mergeExpositions([a, b])).toBe('# HELP m help\n# TYPE m gauge\nm{q="a"} 1\nm{q="b"} 2\n# TYPE n counter\nn 3\n');
  });
});
