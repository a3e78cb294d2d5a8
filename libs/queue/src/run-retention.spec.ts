import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { redisSettings } from '@xyp/config';
import { partJobId, pipelineStepJobId, stageJobId, type RunStatus } from '@xyp/contracts';
import { RunEvents, RunPlans, RunRegistry } from '@xyp/runs';
import { LocalDirectoryStore } from '@xyp/storage';
import { dropPrefix, testPrefix, TEST_REDIS_URL } from '@xyp/testing';
import { collectRuns, parseRetention, type RunRetentionDeps } from './run-retention';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-04T12:00:00.000Z');

describe('run retention (real Redis, real BullMQ queues, a local store)', () => {
  const prefix = testPrefix('retention');
  const dir = mkdtempSync(join(tmpdir(), 'xyp-retention-'));
  const store = new LocalDirectoryStore(dir);
  let redis: Redis;
  let deps: RunRetentionDeps;
  let inspect: Queue;
  let steps: Queue;

  /** A run as it stands after it ended: record, events, plan keys, a committed manifest, a scratch object, jobs. */
  async function seedRun(runId: string, status: RunStatus, endedDaysAgo: number) {
    const at = new Date(NOW - endedDaysAgo * DAY).toISOString();
    await deps.registry.create({ runId, status, stages: ['corpus.inspect'], inputName: 'sample', createdAt: at, updatedAt: at });
    await new RunEvents(redis, prefix).publish({ runId, type: 'stage-started', stage: 'corpus.inspect', at });
    await deps.plans.mark(runId, 'seeded');
    const entry = await store.putObject(runId, 'corpus.inspect', 'counts.json', `{"run":"${runId}"}`);
    await store.commitManifest({ version: 1, runId, stage: 'corpus.inspect', committedAt: at, artifacts: [entry], result: {} });
    // What a part of a failed attempt leaves behind: an object no manifest lists.
    await store.putObject(runId, 'corpus.bucket', '.shards/00000/input.jsonl.gz', 'scratch');
    const job = await inspect.add('corpus.inspect', { runId }, { jobId: stageJobId(runId, 'corpus.inspect') });
    await job.log('a log line: its own key');
    await inspect.add('corpus.inspect', { runId }, { jobId: partJobId(stageJobId(runId, 'corpus.inspect'), 0) });
    await steps.add('pipeline.step', { runId }, { jobId: pipelineStepJobId(runId, 'corpus.inspect') });
  }

  const jobIds = async (queue: Queue) => (await queue.getJobs(['waiting', 'delayed', 'completed', 'failed'])).map((j) => j.id).sort();

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    const connection = { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null };
    inspect = new Queue('corpus.inspect', { connection, prefix });
    steps = new Queue('pipeline.run', { connection, prefix });
    deps = { registry: new RunRegistry(redis, prefix), plans: new RunPlans(redis, prefix), store, redis, prefix, queues: [inspect, steps] };
    await seedRun('run-old', 'completed', 10);
    await seedRun('run-old-failed', 'failed', 8);
    // Its id starts like run-old's: its jobs must not be taken for run-old's.
    await seedRun('run-old0', 'cancelled', 1);
    await seedRun('run-recent', 'completed', 2);
    await seedRun('run-live', 'running', 30);
  });
  afterAll(async () => {
    await Promise.all([inspect.close(), steps.close()]);
    await dropPrefix(redis, prefix);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists what it would remove on a dry run and removes nothing', async () => {
    const result = await collectRuns(deps, { olderThanMs: 7 * DAY, now: NOW, dryRun: true });
    expect(result.removed.map((r) => r.runId).sort()).toEqual(['run-old', 'run-old-failed']);
    expect(result.removed.find((r) => r.runId === 'run-old')).toMatchObject({ status: 'completed', jobs: 2 + 1, committedBytes: '{"run":"run-old"}'.length });
    expect(result).toMatchObject({ active: 1, recent: 2, dryRun: true });
    expect(await deps.registry.get('run-old')).not.toBeNull();
    expect(await store.listManifests('run-old')).toHaveLength(1);
  });

  it('removes ended runs older than the cutoff: objects (scratch included), jobs, plan, events, record; keeps the rest', async () => {
    const result = await collectRuns(deps, { olderThanMs: 7 * DAY, now: NOW });
    expect(result.removed.map((r) => r.runId).sort()).toEqual(['run-old', 'run-old-failed']);
    for (const runId of ['run-old', 'run-old-failed']) {
      expect(await deps.registry.get(runId)).toBeNull();
      expect(await store.listManifests(runId)).toEqual([]);
      expect(await store.statObject(`runs/${runId}/corpus.bucket/.shards/00000/input.jsonl.gz`)).toBeNull();
      expect(await deps.plans.marks(runId)).toEqual({});
      expect(await new RunEvents(redis, prefix).history(runId)).toEqual([]);
      expect(await redis.keys(`${prefix}:*:${runId}.*`)).toEqual([]);
    }
    const kept = ['run-live', 'run-old0', 'run-recent'];
    expect((await jobIds(inspect)).filter((id) => !kept.some((k) => id!.startsWith(`${k}.`)))).toEqual([]);
    for (const runId of kept) {
      expect(await deps.registry.get(runId)).not.toBeNull();
      expect(await store.listManifests(runId)).toHaveLength(1);
      expect((await jobIds(inspect)).filter((id) => id!.startsWith(`${runId}.`))).toHaveLength(2);
      expect((await jobIds(steps)).filter((id) => id!.startsWith(`${runId}.`))).toHaveLength(1);
    }
    // Never an active run, whatever its age.
    expect((await collectRuns(deps, { olderThanMs: 0, now: NOW + DAY })).removed.map((r) => r.runId).sort()).toEqual(['run-old0', 'run-recent']);
    expect(await deps.registry.get('run-live')).not.toBeNull();
  });

  it('reads durations like 7d, 12h, 1d12h and names a bad one', () => {
    expect([parseRetention('7d'), parseRetention('12h'), parseRetention('30m'), parseRetention('90s'), parseRetention('1d12h'), parseRetention('2w')]).toEqual([7 * DAY, DAY / 2, 1_800_000, 90_000, 1.5 * DAY, 14 * DAY]);
    for (const bad of ['7', 'seven days', '7x', '-1d', '', '7d junk']) expect(() => parseRetention(bad)).toThrow(/expected a duration like 7d/);
  });
});
