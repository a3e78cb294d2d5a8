/**
 * The `StageWorker` base on real BullMQ jobs in a real Redis (own key prefix) and a local store:
 * payload validation, the committed-manifest skip, committing the manifest last, fan-out into part
 * jobs, and cancellation. The stages are small subclasses whose work is counted, so a test can see
 * whether the work ran.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisSettings } from '@xyp/config';
import { PackConfig, type ParsedPayloadOf, type PartPayloadOf, type ParsedPartPayloadOf, type PartResultOf, type StageName } from '@xyp/contracts';
import { RunEvents, RunRegistry } from '@xyp/runs';
import { LocalDirectoryStore } from '@xyp/storage';
import { TEST_REDIS_URL, dropPrefix, eventually, testPrefix } from '@xyp/testing';
import { StageRuntime } from './stage-runtime';
import type { StageProducer } from './stage-producer';
import { StageWorker, type PartContext, type StageContext, type StageOutput } from './stage-worker';

const prefix = testPrefix('stage-worker');
const redis = new Redis(TEST_REDIS_URL);
const connection = { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null };
const storeDir = mkdtempSync(join(tmpdir(), 'xyp-stage-worker-'));
const store = new LocalDirectoryStore(storeDir);
const registry = new RunRegistry(redis, prefix);
const events = new RunEvents(redis, prefix);
const queues = {
  'corpus.inspect': new Queue('corpus.inspect', { connection, prefix }),
  'corpus.bucket': new Queue('corpus.bucket', { connection, prefix }),
  'corpus.mix': new Queue('corpus.mix', { connection, prefix }),
} as Record<StageName, Queue>;
const runtime = new StageRuntime(registry, events, store, { queue: (stage: StageName) => queues[stage] } as unknown as StageProducer);
const workers: Worker[] = [];

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.close(true)));
  await Promise.all(Object.values(queues).map((queue) => queue.close()));
  await dropPrefix(redis, prefix);
  redis.disconnect();
  rmSync(storeDir, { recursive: true, force: true });
});

/** Runs `stage`'s jobs with BullMQ as WorkerRegistration does: the processor is `StageWorker.process`. */
function serve(stage: StageName, processor: StageWorker<StageName>): void {
  workers.push(new Worker(stage, (job: Job, token?: string) => processor.process(job, token), { connection, prefix, concurrency: 2 }));
}

async function newRun(runId: string, stages: string[]): Promise<void> {
  const now = new Date().toISOString();
  await registry.create({ runId, status: 'queued', stages, inputName: 'corpus.jsonl', createdAt: now, updatedAt: now });
}

/** Waits for a job to reach a final state; returns it with that state. */
async function settled(queue: Queue, jobId: string): Promise<{ job: Job; state: string }> {
  return eventually(async () => {
    const job = await queue.getJob(jobId);
    const state = await job?.getState();
    return job && (state === 'completed' || state === 'failed') ? { job, state } : undefined;
  }, 30_000, `job ${jobId} to settle`);
}

async function eventTypes(runId: string): Promise<string[]> {
  return (await events.history(runId)).map((e) => `${e.type}${e.stage ? ` ${e.stage}` : ''}`);
}

const inspectResult = { docs: 2, rejected: 0, chars: 10, categories: { news: { docs: 2, chars: 10 } }, rejectReasons: {} };

/** corpus.inspect whose work writes one artifact, or waits for `hold` and then reports progress. */
class InspectStage extends StageWorker<'corpus.inspect'> {
  readonly stage = 'corpus.inspect' as const;
  executed = 0;
  hold: Promise<void> | undefined;
  started: (() => void) | undefined;

  protected async execute(payload: ParsedPayloadOf<'corpus.inspect'>, context: StageContext): Promise<StageOutput<'corpus.inspect'>> {
    this.executed += 1;
    if (this.hold) {
      this.started?.();
      await this.hold;
      await context.progress(1, 2, 'documents');
    }
    const entry = await context.store.putObject(payload.runId, this.stage, 'counts.json', JSON.stringify(inspectResult), 'application/json');
    return { result: inspectResult, artifacts: [entry] };
  }
}

const inspect = new InspectStage(runtime);
serve('corpus.inspect', inspect);

describe('StageWorker: payload validation', () => {
  it('fails an invalid payload at once with UnrecoverableError, naming every bad field, without retrying or working, and fails the run', async () => {
    await newRun('sw-invalid', ['corpus.inspect']);
    const before = inspect.executed;
    const job = await queues['corpus.inspect'].add('corpus.inspect', { runId: 'sw-invalid', extra: 1 }, { jobId: 'sw-invalid.corpus.inspect', attempts: 3, backoff: { type: 'fixed', delay: 60_000 } });
    const { job: done, state } = await settled(queues['corpus.inspect'], String(job.id));
    // Failed for good: a retryable failure with attempts left would sit in `delayed` for the backoff.
    expect(state).toBe('failed');
    expect(done.failedReason).toMatch(/^invalid corpus\.inspect payload in job sw-invalid\.corpus\.inspect: /);
    expect(done.failedReason).toContain('inputKey:');
    expect(done.failedReason).toContain('extra');
    expect(inspect.executed).toBe(before);
    expect((await registry.get('sw-invalid'))?.status).toBe('failed');
    expect(await eventTypes('sw-invalid')).toEqual(['stage-failed corpus.inspect', 'run-failed corpus.inspect']);
  });
});

describe('StageWorker: manifest first, manifest last', () => {
  it('runs the work once, commits the manifest after it, and skips a second delivery of the same stage', async () => {
    await newRun('sw-once', ['corpus.inspect']);
    const before = inspect.executed;
    const payload = { runId: 'sw-once', inputKey: 'runs/sw-once/input/objects/x' };
    const first = await queues['corpus.inspect'].add('corpus.inspect', payload, { jobId: 'sw-once.corpus.inspect' });
    const { job, state } = await settled(queues['corpus.inspect'], String(first.id));
    expect(state).toBe('completed');
    expect(job.returnvalue).toEqual(inspectResult);
    const manifest = await store.readManifest('sw-once', 'corpus.inspect');
    expect(manifest?.result).toEqual(inspectResult);
    expect(manifest?.artifacts.map((a) => a.name)).toEqual(['counts.json']);
    expect(inspect.executed).toBe(before + 1);

    // At-least-once delivery: the same stage again (another job id) finds the manifest and does nothing.
    const again = await queues['corpus.inspect'].add('corpus.inspect', payload, { jobId: 'sw-once.corpus.inspect-redelivered' });
    const second = await settled(queues['corpus.inspect'], String(again.id));
    expect(second.state).toBe('completed');
    expect(second.job.returnvalue).toEqual(inspectResult);
    expect(inspect.executed).toBe(before + 1);
    expect(await eventTypes('sw-once')).toEqual(['stage-started corpus.inspect', 'stage-completed corpus.inspect', 'stage-skipped corpus.inspect']);
  });

  it('returns the committed result without working when the manifest exists before the first delivery', async () => {
    await newRun('sw-committed', ['corpus.inspect']);
    const committedResult = { ...inspectResult, docs: 7 };
    await store.commitManifest({ version: 1, runId: 'sw-committed', stage: 'corpus.inspect', committedAt: new Date().toISOString(), artifacts: [], result: committedResult });
    const before = inspect.executed;
    const job = await queues['corpus.inspect'].add('corpus.inspect', { runId: 'sw-committed', inputKey: 'k' }, { jobId: 'sw-committed.corpus.inspect' });
    const done = await settled(queues['corpus.inspect'], String(job.id));
    expect(done.state).toBe('completed');
    expect(done.job.returnvalue).toEqual(committedResult);
    expect(inspect.executed).toBe(before);
    const skipped = (await events.history('sw-committed')).map((e) => [e.type, e.message]);
    expect(skipped).toEqual([['stage-skipped', 'already committed']]);
  });
});

describe('StageWorker: cancellation', () => {
  it('refuses to start a job of a cancelled run', async () => {
    await newRun('sw-cancelled', ['corpus.inspect']);
    await registry.transition('sw-cancelled', 'cancelled');
    const before = inspect.executed;
    const job = await queues['corpus.inspect'].add('corpus.inspect', { runId: 'sw-cancelled', inputKey: 'k' }, { jobId: 'sw-cancelled.corpus.inspect', attempts: 3 });
    const done = await settled(queues['corpus.inspect'], String(job.id));
    expect(done.state).toBe('failed');
    expect(done.job.failedReason).toBe('run sw-cancelled is cancelled; corpus.inspect not started');
    expect(inspect.executed).toBe(before);
    expect(await store.readManifest('sw-cancelled', 'corpus.inspect')).toBeNull();
  });

  it('stops running work at its next progress report once the run is cancelled, and commits nothing', async () => {
    await newRun('sw-cancel-mid', ['corpus.inspect']);
    let release = (): void => undefined;
    inspect.hold = new Promise<void>((resolve) => (release = resolve));
    const started = new Promise<void>((resolve) => (inspect.started = resolve));
    try {
      const job = await queues['corpus.inspect'].add('corpus.inspect', { runId: 'sw-cancel-mid', inputKey: 'k' }, { jobId: 'sw-cancel-mid.corpus.inspect', attempts: 3 });
      await started;
      await registry.transition('sw-cancel-mid', 'cancelled');
      release();
      const done = await settled(queues['corpus.inspect'], String(job.id));
      expect(done.state).toBe('failed');
      expect(done.job.failedReason).toBe('run sw-cancel-mid was cancelled');
      expect(await store.readManifest('sw-cancel-mid', 'corpus.inspect')).toBeNull();
      // The run stays cancelled (a failure after the cancel does not turn it into failed).
      expect((await registry.get('sw-cancel-mid'))?.status).toBe('cancelled');
    } finally {
      inspect.hold = undefined;
      inspect.started = undefined;
    }
  });
});

/** A part job's result of corpus.bucket for shard `index`, with its index in the report's counts. */
function partResult(index: number): PartResultOf<'corpus.bucket'> {
  const zero = { documents: 0, truncatedDocuments: 0, pieces: 0, sequences: 0, tokens: 0, paddingTokens: 0, mixedSequences: 0 };
  return {
    report: {
      shard: { index, startLine: index * 10, endLine: index * 10 + 10, startByte: null, endByte: null, object: null },
      lines: 10,
      blankLines: 0,
      kept: index + 1,
      rejected: 0,
      rejectsByReason: {},
      categories: ['news'],
      stats: { total: zero, byLength: {}, byCategory: {} },
      outputs: [],
      rejectsName: `rejects-${index}.jsonl`,
      timings: { totalMs: 1, tokenizerWaitMs: 0 },
    },
    files: {},
  };
}

/** corpus.bucket fanned out into `parts` shard jobs, its merge summing what the parts report. */
class BucketStage extends StageWorker<'corpus.bucket'> {
  readonly stage = 'corpus.bucket' as const;
  plans = 0;
  passes = 0;
  partsRun: number[] = [];
  merged: number[][] = [];

  constructor(private readonly parts: number) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'corpus.bucket'>, context: StageContext): Promise<StageOutput<'corpus.bucket'>> {
    this.passes += 1;
    const results = await context.fanOut(async () => {
      this.plans += 1;
      return Array.from({ length: this.parts }, (_, index): PartPayloadOf<'corpus.bucket'> => ({
        runId: payload.runId,
        partIndex: index,
        partCount: this.parts,
        inputKey: payload.inputKey,
        gzip: false,
        shard: { index, startLine: index * 10, endLine: index * 10 + 10, startByte: null },
        config: PackConfig.parse({}),
        tokenizer: { spec: 'llama3', eodId: 128001, dtype: 'int32' },
        scratchPrefix: `runs/${payload.runId}/corpus.bucket/tmp`,
      }));
    });
    const kept = (results as PartResultOf<'corpus.bucket'>[]).map((r) => r.report.kept);
    this.merged.push(kept);
    const total = kept.reduce((a, b) => a + b, 0);
    const result = {
      strategy: 'bucket',
      documentsIn: total,
      kept: total,
      rejected: 0,
      rejectsByReason: {},
      tokens: 0,
      paddingRatio: 0,
      truncationRatio: 0,
      concatRatio: 0,
      sequencesPerBucket: {},
      categories: ['news'],
      shards: results.length,
      tokenizer: 'llama3',
    };
    return { result, artifacts: [] };
  }

  protected override async executePart(payload: ParsedPartPayloadOf<'corpus.bucket'>, context: PartContext): Promise<PartResultOf<'corpus.bucket'>> {
    expect(context.partIndex).toBe(payload.partIndex);
    this.partsRun.push(payload.partIndex);
    return partResult(payload.partIndex);
  }
}

describe('StageWorker: fan-out', () => {
  it('plans once, runs every part as a child job, then resumes the stage with the parts’ results in part order', async () => {
    const bucket = new BucketStage(3);
    serve('corpus.bucket', bucket);
    await newRun('sw-fan', ['corpus.bucket']);
    const job = await queues['corpus.bucket'].add('corpus.bucket', { runId: 'sw-fan', inputKey: 'runs/sw-fan/input/objects/x' }, { jobId: 'sw-fan.corpus.bucket' });
    const done = await settled(queues['corpus.bucket'], String(job.id));
    expect(done.state).toBe('completed');
    // The stage job ran twice (plan, then merge after its children), the plan once, each part once.
    expect(bucket.passes).toBe(2);
    expect(bucket.plans).toBe(1);
    expect([...bucket.partsRun].sort()).toEqual([0, 1, 2]);
    expect(bucket.merged).toEqual([[1, 2, 3]]);
    expect(done.job.returnvalue).toMatchObject({ kept: 6, shards: 3 });
    const children = await Promise.all([0, 1, 2].map((i) => queues['corpus.bucket'].getJob(`sw-fan.corpus.bucket.part-0000${i}`)));
    for (const child of children) {
      expect(child?.name).toBe('corpus.bucket.shard');
      expect(child?.parent?.id).toBe('sw-fan.corpus.bucket');
      expect(await child?.getState()).toBe('completed');
    }
    expect(await store.readManifest('sw-fan', 'corpus.bucket')).toMatchObject({ result: { kept: 6, shards: 3 } });
    const trail = await eventTypes('sw-fan');
    expect(trail[0]).toBe('stage-started corpus.bucket');
    expect(trail.filter((t) => t === 'stage-progress corpus.bucket')).toHaveLength(4);
    expect(trail[trail.length - 1]).toBe('stage-completed corpus.bucket');
  });
});

/** corpus.mix whose first attempt keeps a resume checkpoint and then crashes. */
class CrashingStage extends StageWorker<'corpus.mix'> {
  readonly stage = 'corpus.mix' as const;
  seen: unknown[] = [];

  protected async execute(payload: ParsedPayloadOf<'corpus.mix'>, context: StageContext): Promise<StageOutput<'corpus.mix'>> {
    this.seen.push(context.resumeCheckpoint);
    if (context.attempt === 1) {
      await context.keepCheckpoint({ step: 4, files: ['resume/trainer.json'] });
      throw new Error('worker crashed mid-training');
    }
    return { result: { mode: 'cpt', weights: { a: 1 }, changes: [], notes: [], maxWeightChange: 0, decision: { continue: false, reason: 'done' } }, artifacts: [] };
  }
}

describe('StageWorker: resume checkpoints', () => {
  it('hands the checkpoint an attempt kept to the next attempt, and keeps it out of the payload', async () => {
    const crashing = new CrashingStage(runtime);
    serve('corpus.mix', crashing);
    await newRun('sw-resume', ['corpus.mix']);
    const job = await queues['corpus.mix'].add('corpus.mix', { runId: 'sw-resume', lossesKey: 'l', weightsKey: 'w' }, { jobId: 'sw-resume.corpus.mix', attempts: 2, backoff: { type: 'fixed', delay: 10 } });
    const { state } = await settled(queues['corpus.mix'], String(job.id));
    expect(state).toBe('completed');
    // The strict payload schema would refuse the kept key, had it not been removed before validation.
    expect(crashing.seen).toEqual([undefined, { step: 4, files: ['resume/trainer.json'] }]);
  });
});
