import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisSettings } from '@xyp/config';
import { RunEvents, RunRegistry } from '@xyp/runs';
import { LocalDirectoryStore } from '@xyp/storage';
import { TEST_REDIS_URL, dropPrefix, eventually, testPrefix } from '@xyp/testing';
import { announceStalledJob } from './stalled-jobs';
import { StageRuntime } from './stage-runtime';
import type { StageProducer } from './stage-producer';

/**
 * Real BullMQ stalls on real Redis: a worker takes the job and never renews its lock (as
 * a worker killed mid-job), the lock expires, and another worker's stalled-job check
 * moves the job back to wait and emits `stalled`. (The whole path with a service process
 * killed by SIGKILL is in tools/e2e worker-restart.e2e.spec.ts.)
 */
describe('a stalled stage job', () => {
  const prefix = testPrefix('stalled');
  const redis = new Redis(TEST_REDIS_URL);
  const connection = { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null };
  const storeDir = mkdtempSync(join(tmpdir(), 'xyp-stalled-'));
  const queue = new Queue('corpus.inspect', { connection, prefix });
  const registry = new RunRegistry(redis, prefix);
  const events = new RunEvents(redis, prefix);
  const runtime = new StageRuntime(registry, events, new LocalDirectoryStore(storeDir), { queue: () => queue } as unknown as StageProducer);
  const workers: Worker[] = [];

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.close(true)));
    await queue.close();
    await dropPrefix(redis, prefix);
    redis.disconnect();
    rmSync(storeDir, { recursive: true, force: true });
  });

  /** A worker that takes jobs by hand and never renews their locks: it "dies" holding each job it takes. */
  function dyingWorker(): Worker {
    const worker = new Worker('corpus.inspect', null, { connection, prefix, autorun: false, lockDuration: 400 });
    workers.push(worker);
    return worker;
  }

  /** Another worker whose stalled-job check announces what it finds, as WorkerRegistration wires it. */
  function checkingWorker(): Worker {
    const worker = new Worker('corpus.inspect', null, { connection, prefix, autorun: false, stalledInterval: 200, maxStalledCount: 2 });
    worker.on('stalled', (jobId: string) => void announceStalledJob(runtime, 'corpus.inspect', jobId, 2));
    workers.push(worker);
    return worker;
  }

  async function runWith(runId: string): Promise<Job> {
    const now = new Date().toISOString();
    await registry.create({ runId, status: 'running', stages: ['corpus.inspect'], inputName: 'x', createdAt: now, updatedAt: now });
    return queue.add('corpus.inspect', { runId, inputKey: `runs/${runId}/input/objects/abc` }, { jobId: `${runId}.corpus.inspect` });
  }

  async function stallOnce(dying: Worker, jobId: string, stalls: number): Promise<void> {
    const taken = await dying.getNextJob(`token-${stalls}`, { block: false });
    expect(taken?.id).toBe(jobId);
    await eventually(async () => ((await queue.getJob(jobId))?.stalledCounter === stalls ? true : undefined), 10_000, `stall ${stalls}`);
  }

  it('is announced as taken over, then fails its stage and its run when it stalls more than maxStalledCount times', async () => {
    const job = await runWith('run-stalled');
    const jobId = String(job.id);
    const dying = dyingWorker();
    void checkingWorker().startStalledCheckTimer();

    await stallOnce(dying, jobId, 1);
    const retrying = await eventually(async () => {
      const found = (await events.history('run-stalled')).filter((e) => e.type === 'stage-retrying');
      return found.length ? found : undefined;
    });
    expect(retrying.map((e) => [e.stage, e.message])).toEqual([
      ['corpus.inspect', 'job run-stalled.corpus.inspect stalled: its worker stopped renewing the lock (killed or hung); back in the queue, taken over by the next free worker (stall 1 of at most 2)'],
    ]);
    expect(await (await queue.getJob(jobId))?.getState()).toBe('waiting');

    await stallOnce(dying, jobId, 2);
    await stallOnce(dying, jobId, 3);
    // BullMQ would now fail the job without running it: the run must not be left running.
    const run = await eventually(async () => {
      const record = await registry.get('run-stalled');
      return record?.status === 'failed' ? record : undefined;
    });
    expect(run.error).toBe('corpus.inspect: job run-stalled.corpus.inspect stalled: its worker stopped renewing the lock (killed or hung), 3 times (at most 2); failed');
    const trail = (await events.history('run-stalled')).map((e) => `${e.type}:${e.message.slice(-32)}`);
    expect(trail).toEqual([
      'stage-retrying:ee worker (stall 1 of at most 2)',
      'stage-retrying:ee worker (stall 2 of at most 2)',
      'stage-failed:ng), 3 times (at most 2); failed',
      'run-failed:ng), 3 times (at most 2); failed',
    ]);
  }, 60_000);
});
