/**
 * Long CPU-bound training inside a real BullMQ worker on real Redis. The worker's lock is 1 s (the
 * platform's default is 30 s), so a ~20 s training job here is what a 10-minute job is with the
 * default lock: without the worker thread the lock would not be renewed while the engine computes,
 * the job would be found stalled and run a second time.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { redisSettings } from '@xyp/config';
import type { CausalLmSpecInput, EngineJob } from '@xyp/contracts';
import { STEP_MARKER_KEY, TS_REGISTER, runInThread, storedStepMarker, watchEventLoop } from '@xyp/offload';
import { createArtifactStore, type ArtifactStoreOptions } from '@xyp/storage';
import { TEST_REDIS_URL, dropPrefix, eventually, testPrefix } from '@xyp/testing';
import type { JobProgress, ResumeMarker } from './job-control';
import { TRAINING_JOB_TASK, type TrainingJobInput } from './thread-task';
import { trainingJobProcessor, type TrainingJobResult, type TrainingProcessorOptions } from './training-processor';

const LOCK_MS = 1000;
const QUEUE = 'engine-train';
const backend = { threads: 1 };
/** ~45 ms a step on one thread here: 400 steps train for ~20 s. */
const longModel = { layers: 2, width: 128, heads: 4, context: 128 };
/** ~10 ms a step. */
const smallModel = { layers: 2, width: 64, heads: 4, context: 64 };

describe('engine training in a BullMQ worker, off its event loop', () => {
  const prefix = testPrefix('train-offload');
  const redis = new Redis(TEST_REDIS_URL);
  const connection = { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null };
  const queue = new Queue(QUEUE, { connection, prefix });
  const events = new QueueEvents(QUEUE, { connection, prefix });
  const dir = mkdtempSync(join(tmpdir(), 'xyp-train-offload-'));
  const storeOptions: ArtifactStoreOptions = { kind: 'local', root: join(dir, 'store') };
  const store = createArtifactStore(storeOptions);
  const corpus = join(dir, 'corpus.jsonl');
  writeFileSync(
    corpus,
    Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: `d${i}`, text: `the rate rose ${i} bp and bonds fell ${i % 7} points on the day`, category: 'news' })).join('\n'),
  );
  const workers: Worker[] = [];
  const stalled: string[] = [];
  events.on('stalled', ({ jobId }) => void stalled.push(jobId));

  // A test that failed half-way leaves no worker behind to take the next test's job.
  afterEach(async () => {
    await Promise.all(workers.filter((w) => !w.closing).map((w) => w.close(true)));
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close(true)));
    await events.close();
    await queue.close();
    await dropPrefix(redis, prefix);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  interface Started {
    worker: Worker;
    /** Job ids, one per processor call. */
    calls: string[];
  }

  /** A worker with a 1 s lock whose processor runs training jobs in a thread. */
  function startWorker(options: Partial<TrainingProcessorOptions> = {}): Started {
    const calls: string[] = [];
    const processor = trainingJobProcessor({ store, storeOptions, backend, worker: () => worker, progressIntervalMs: 500, ...options });
    const worker: Worker = new Worker(
      QUEUE,
      async (job: Job, token?: string, signal?: AbortSignal): Promise<TrainingJobResult> => {
        calls.push(String(job.id));
        return processor(job, token, signal);
      },
      { connection, prefix, lockDuration: LOCK_MS, stalledInterval: LOCK_MS, maxStalledCount: 1 },
    );
    worker.on('stalled', (jobId: string) => void stalled.push(jobId));
    workers.push(worker);
    return { worker, calls };
  }

  function cptJob(runId: string, steps: number, architecture = longModel): { kind: 'causal-lm'; spec: CausalLmSpecInput } {
    return { kind: 'causal-lm', spec: { runId, data: { jsonl: corpus }, steps, batchSize: 8, architecture, optimizer: { lr: 3e-3, warmupSteps: 10 } } };
  }

  it('a ~20 s stage under a 1 s lock keeps its lock, reports progress regularly and runs exactly once', async () => {
    const a = startWorker();
    const b = startWorker();
    const arrivals: { at: number; progress: JobProgress }[] = [];
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }): void => {
      if (jobId === 'long-run') arrivals.push({ at: Date.now(), progress: data as JobProgress });
    };
    events.on('progress', onProgress);
    const loop = watchEventLoop();
    const started = Date.now();
    const job = await queue.add('train', cptJob('long-run', 400), { jobId: 'long-run', attempts: 3 });
    const result = (await job.waitUntilFinished(events, 300_000)) as TrainingJobResult;
    const elapsed = Date.now() - started;
    const delay = loop.stop();
    events.off('progress', onProgress);

    const gaps = arrivals.slice(1).map((p, i) => p.at - arrivals[i].at);
    const firstAt = arrivals[0].at - started;
    const measured = {
      elapsedMs: elapsed,
      lockMs: LOCK_MS,
      eventLoopDelay: delay,
      progressReports: arrivals.length,
      firstProgressAfterMs: firstAt,
      maxProgressGapMs: Math.max(...gaps),
      lastMessage: arrivals.at(-1)?.progress.message,
    };
    console.log(`offloaded training: ${JSON.stringify(measured)}`);

    // Much longer than the lock: 10+ lock durations.
    expect(elapsed).toBeGreaterThan(10 * LOCK_MS);
    // Never found stalled, never run twice (a second worker was idle on the same queue all along).
    expect(stalled).toEqual([]);
    expect([...a.calls, ...b.calls]).toEqual(['long-run']);
    const finished = await queue.getJob('long-run');
    expect(finished?.attemptsMade).toBe(1);
    expect(finished?.attemptsStarted).toBe(1);
    // The worker's event loop stayed free: never late by half a lock (the renewal period).
    expect(delay.maxMs).toBeLessThan(LOCK_MS / 2);
    // Progress arrived all along, in units a person reads.
    expect(arrivals.length).toBeGreaterThan(elapsed / 2000);
    expect(Math.max(...gaps)).toBeLessThan(2500);
    const last = arrivals.at(-1)!.progress;
    expect(last).toMatchObject({ unit: 'steps', done: 400, total: 400, job: 'causal-lm' });
    expect(last.message).toMatch(/^lm step 400\/400, loss \d+\.\d{4}, lr [\d.e+-]+, [\d,]+ tok\/s, ETA 0s$/);
    expect(arrivals[Math.floor(arrivals.length / 2)].progress.etaSeconds).toBeGreaterThan(0);
    expect(result).toMatchObject({ checkpoint: 'long-run/engine.lm', committed: true, metrics: { steps: 400 } });
    expect(result.metrics.finalLoss).toBeLessThan(result.metrics.initialLoss);
    expect(await store.readManifest('long-run', 'engine.lm')).not.toBeNull();
    await Promise.all([a.worker.close(), b.worker.close()]);
  }, 320_000);

  it('cancel mid-run stops within one step, fails the job without a retry and commits nothing', async () => {
    let atCancel: number | undefined;
    let lastSeen = 0;
    let cancelledAt = 0;
    const onProgress = (job: Job, p: JobProgress): void => {
      lastSeen = p.done;
      if (job.id === 'cancel-run' && p.done >= 20 && atCancel === undefined) {
        atCancel = p.done;
        cancelledAt = performance.now();
        started.worker.cancelJob('cancel-run', 'the run was cancelled');
      }
    };
    const started = startWorker({ onProgress });
    const job = await queue.add('train', cptJob('cancel-run', 400), { jobId: 'cancel-run', attempts: 3 });
    await expect(job.waitUntilFinished(events, 120_000)).rejects.toThrow('job cancel-run cancelled: the run was cancelled');
    const stoppedMs = performance.now() - cancelledAt;
    console.log(`cancel: requested after step ${atCancel}, last step ${lastSeen}, job failed ${Math.round(stoppedMs)} ms after the cancel`);
    expect(lastSeen - (atCancel as number)).toBeLessThanOrEqual(1);
    const failed = await queue.getJob('cancel-run');
    expect(await failed?.getState()).toBe('failed');
    expect(failed?.attemptsMade).toBe(1);
    expect(started.calls).toEqual(['cancel-run']);
    expect(await store.readManifest('cancel-run', 'engine.lm')).toBeNull();
    // Not even an uncommitted object: this job was not asked for resume checkpoints.
    expect(existsSync(join(dir, 'store', 'runs', 'cancel-run'))).toBe(false);
    await started.worker.close();
  }, 180_000);

  it('worker.close() mid-run (SIGTERM): the step finishes, the job goes back to wait with its step marker, another worker resumes it and ends bit for bit where an uninterrupted run ends', async () => {
    const steps = 300;
    let atClose: number | undefined;
    let closing: Promise<void> | undefined;
    const seenByFirst: number[] = [];
    const first: Started = startWorker({
      checkpointEverySteps: 50,
      onProgress: (_job, p) => {
        seenByFirst.push(p.done);
        if (p.done >= 120 && atClose === undefined) {
          atClose = p.done;
          closing = first.worker.close();
        }
      },
    });
    const job = await queue.add('train', cptJob('resume-run', steps, smallModel), { jobId: 'resume-run', attempts: 2 });
    await eventually(() => (closing ? true : undefined), 120_000, 'the first worker to start closing');
    await closing;
    const waiting = await queue.getJob('resume-run');
    expect(await waiting?.getState()).toBe('waiting');
    expect(waiting?.attemptsMade).toBe(0);
    const marker = storedStepMarker<ResumeMarker>(waiting?.data);
    expect(marker).toMatchObject({ version: 1, kind: 'causal-lm', runId: 'resume-run', stage: 'engine.lm', totalSteps: steps });
    // It finished the step in progress and no other: the marker is the last step it reported.
    expect(marker!.step).toBe(Math.max(...seenByFirst));
    expect(marker!.step - (atClose as number)).toBeLessThanOrEqual(1);
    expect(Object.keys(marker!.files).sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer.json']);
    expect(waiting?.data).toHaveProperty(STEP_MARKER_KEY);
    expect(await store.readManifest('resume-run', 'engine.lm')).toBeNull();

    const seenBySecond: number[] = [];
    const second = startWorker({ checkpointEverySteps: 50, onProgress: (_job, p) => void seenBySecond.push(p.done) });
    const result = (await job.waitUntilFinished(events, 120_000)) as TrainingJobResult;
    console.log(`resume: first worker closed at step ${atClose}, marker step ${marker!.step}, second worker's first step ${seenBySecond[0]}`);
    expect(seenBySecond[0]).toBe(marker!.step + 1);
    expect(seenBySecond.at(-1)).toBe(steps);
    expect([...first.calls, ...second.calls]).toEqual(['resume-run', 'resume-run']);
    expect(result).toMatchObject({ checkpoint: 'resume-run/engine.lm', committed: true, metrics: { steps } });

    // The same job trained without a break, in a thread of its own: the same weights, bit for bit.
    const straight = await runInThread<TrainingJobInput, EngineJob>(TRAINING_JOB_TASK, { ...cptJob('resume-ref', steps, smallModel), store: storeOptions, backend });
    const resumed = await store.readManifest('resume-run', 'engine.lm');
    const sha = (artifacts: { name: string; sha256: string }[]) => artifacts.find((a) => a.name === 'model.safetensors')?.sha256;
    expect(straight.engine === 'local' && sha(straight.manifest.artifacts)).toBe(sha(resumed!.artifacts));
    expect(straight.engine === 'local' && straight.metrics.finalLoss).toBe(result.metrics.finalLoss);
    expect(stalled).toEqual([]);
    await second.worker.close();
  }, 240_000);

  it('SIGTERM to a worker process mid-run: it drains, exits 0, and a worker elsewhere resumes from its marker', async () => {
    const settings = { redis: redisSettings(TEST_REDIS_URL), prefix, queue: QUEUE, store: storeOptions, lockMs: LOCK_MS };
    const child = spawn(process.execPath, ['-r', TS_REGISTER, join(__dirname, 'testing', 'training-worker-process.ts'), JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await eventually(() => (lines.includes('ready') ? true : undefined), 60_000, 'the worker process');
    const job = await queue.add('train', cptJob('sigterm-run', 300, smallModel), { jobId: 'sigterm-run', attempts: 2 });
    const stepOf = (line: string | undefined) => Number(line?.split(' ')[1] ?? 0);
    await eventually(() => (stepOf(lines.filter((l) => l.startsWith('progress')).at(-1)) >= 100 ? true : undefined), 60_000, 'step 100 in the worker process');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines.at(-1)).toBe('closed');
    const lastStep = stepOf(lines.filter((l) => l.startsWith('progress')).at(-1));
    const waiting = await queue.getJob('sigterm-run');
    expect(await waiting?.getState()).toBe('waiting');
    expect(waiting?.attemptsMade).toBe(0);
    const marker = storedStepMarker<ResumeMarker>(waiting?.data);
    expect(marker?.step).toBe(lastStep);
    expect(await store.readManifest('sigterm-run', 'engine.lm')).toBeNull();

    const seen: number[] = [];
    const here = startWorker({ onProgress: (_job, p) => void seen.push(p.done) });
    const result = (await job.waitUntilFinished(events, 120_000)) as TrainingJobResult;
    console.log(`SIGTERM: worker process stopped after step ${lastStep} (marker ${marker?.step}), resumed here at step ${seen[0]}`);
    expect(seen[0]).toBe(lastStep + 1);
    expect(result).toMatchObject({ checkpoint: 'sigterm-run/engine.lm', committed: true, metrics: { steps: 300 } });
    expect(stalled).toEqual([]);
    await here.worker.close();
  }, 180_000);
});
