import { join } from 'node:path';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisSettings } from '@xyp/config';
import { TEST_REDIS_URL, dropPrefix, eventually, testPrefix } from '@xyp/testing';
import { STEP_MARKER_KEY, runJobInThread, storedStepMarker, withoutStepMarker } from './bullmq-job';
import type { StepMarker, StepProgress, StepsInput } from './testing/fixture-tasks';

const FIXTURES = join(__dirname, 'testing', 'fixture-tasks.ts');
const QUEUE = 'offload-steps';

/**
 * The glue between a BullMQ job and a worker thread, on real Redis with the fixture task (busy-loop
 * steps); `@xyp/local-engine`'s `offloaded-training.spec.ts` runs it with real engine training.
 */
describe('runJobInThread: a BullMQ job whose work runs in a worker thread', () => {
  const prefix = testPrefix('offload');
  const redis = new Redis(TEST_REDIS_URL);
  const connection = { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null };
  const queue = new Queue(QUEUE, { connection, prefix });
  const events = new QueueEvents(QUEUE, { connection, prefix });
  const workers: Worker[] = [];
  const runs: { jobId: string; resume: StepMarker | undefined }[] = [];

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close(true)));
    await events.close();
    await queue.close();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  function startWorker(options: { isCancelled?: () => Promise<boolean | string>; onProgress?: (job: Job, p: StepProgress) => void } = {}): Worker {
    const worker: Worker = new Worker(
      QUEUE,
      (job: Job, token?: string, signal?: AbortSignal) =>
        runJobInThread<StepsInput, unknown, StepProgress, StepMarker>(job, token, {
          task: { module: FIXTURES, name: 'countSteps' },
          input: (resume) => {
            runs.push({ jobId: String(job.id), resume });
            return { ...(withoutStepMarker(job.data) as StepsInput), from: resume?.step };
          },
          signal,
          worker,
          progressIntervalMs: 100,
          isCancelled: options.isCancelled,
          cancelPollMs: 50,
          onProgress: options.onProgress && ((p) => options.onProgress?.(job, p)),
        }),
      { connection, prefix, lockDuration: 1000, stalledInterval: 1000 },
    );
    workers.push(worker);
    return worker;
  }

  it('stores throttled progress and each step marker on the job, and returns the task’s result', async () => {
    const worker = startWorker();
    const progress: StepProgress[] = [];
    // The worker's `progress` event: what job.updateProgress stored.
    worker.on('progress', (_job, p) => void progress.push(p as StepProgress));
    const job = await queue.add('steps', { steps: 20, stepMs: 20, markerEvery: 5 }, { jobId: 'complete' });
    const result = (await job.waitUntilFinished(events, 30_000)) as { steps: number; mainThread: boolean };
    expect(result).toMatchObject({ steps: 20, mainThread: false });
    const done = await queue.getJob('complete');
    expect(storedStepMarker(done?.data)).toEqual({ step: 20 });
    expect(done?.data).toMatchObject({ steps: 20, [STEP_MARKER_KEY]: { step: 20 } });
    // 20 steps of 20 ms, stored at most every 100 ms: fewer reports than steps, the last one included.
    expect(progress.length).toBeLessThan(20);
    expect(progress.at(-1)).toEqual({ done: 20, total: 20, unit: 'steps' });
    expect(done?.progress).toEqual({ done: 20, total: 20, unit: 'steps' });
    await worker.close();
  });

  it('cancel (worker.cancelJob): the thread stops within one step and the job fails without a retry', async () => {
    let atCancel = 0;
    let last = 0;
    // Every report of the thread (unthrottled), as the processor sees it.
    const worker = startWorker({
      onProgress: (job, p) => {
        last = p.done;
        if (last >= 5 && !atCancel) {
          atCancel = last;
          worker.cancelJob(String(job.id), 'stop this job');
        }
      },
    });
    try {
      const job = await queue.add('steps', { steps: 200, stepMs: 50 }, { jobId: 'cancelled', attempts: 3 });
      await expect(job.waitUntilFinished(events, 30_000)).rejects.toThrow('job cancelled cancelled: stop this job');
      const failed = await queue.getJob('cancelled');
      expect(await failed?.getState()).toBe('failed');
      expect(failed?.attemptsMade).toBe(1);
      expect(last - atCancel).toBeLessThanOrEqual(1);
    } finally {
      await worker.close();
    }
  });

  it('cancel (isCancelled, e.g. a cancelled run): polled while the thread runs', async () => {
    let cancelled = false;
    const worker = startWorker({ isCancelled: async () => cancelled && 'run was cancelled', onProgress: (_job, p) => void (p.done >= 3 && (cancelled = true)) });
    try {
      const job = await queue.add('steps', { steps: 200, stepMs: 50 }, { jobId: 'run-cancelled', attempts: 3 });
      await expect(job.waitUntilFinished(events, 30_000)).rejects.toThrow('run was cancelled');
    } finally {
      await worker.close();
    }
  });

  it('close while active: the thread drains, the job goes back to wait with its marker, and the next worker resumes from it', async () => {
    const first = startWorker();
    const job = await queue.add('steps', { steps: 40, stepMs: 25 }, { jobId: 'handed-back', attempts: 1 });
    await eventually(async () => {
      const progress = (await queue.getJob('handed-back'))?.progress as StepProgress | undefined;
      return progress && progress.done >= 6 ? true : undefined;
    }, 20_000, 'six steps');
    await first.close();
    const waiting = await queue.getJob('handed-back');
    expect(await waiting?.getState()).toBe('waiting');
    expect(waiting?.attemptsMade).toBe(0);
    const marker = storedStepMarker<StepMarker>(waiting?.data);
    expect(marker?.step).toBeGreaterThan(0);

    startWorker();
    const result = (await job.waitUntilFinished(events, 30_000)) as { steps: number; from: number };
    expect(result).toMatchObject({ steps: 40, from: marker?.step });
    expect(runs.filter((r) => r.jobId === 'handed-back')).toEqual([
      { jobId: 'handed-back', resume: undefined },
      { jobId: 'handed-back', resume: marker },
    ]);
    expect((await queue.getJob('handed-back'))?.attemptsMade).toBe(1);
  });
});
