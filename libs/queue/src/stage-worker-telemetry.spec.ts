/**
 * What the `StageWorker` base tells operators, on real BullMQ jobs in a real Redis (own key prefix)
 * and a local store: JSON log lines carrying the job's ids from deep inside the work, job durations
 * and outcomes and training gauges on a prom-client registry, and a worker span that is the child
 * of the span that added the job (its `traceparent` in the job data).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisSettings } from '@xyp/config';
import type { ParsedPayloadOf } from '@xyp/contracts';
import { RunEvents, RunRegistry } from '@xyp/runs';
import { LocalDirectoryStore } from '@xyp/storage';
import { JsonLogger, SpanKind, StageJobMetrics, endSpan, startSpan, startTracing, stopTracing, withTelemetryScope } from '@xyp/telemetry';
import { TEST_REDIS_URL, dropPrefix, eventually, testPrefix } from '@xyp/testing';
import { StageProducer } from './stage-producer';
import { StageRuntime } from './stage-runtime';
import { StageWorker, type StageContext, type StageOutput } from './stage-worker';

const prefix = testPrefix('stage-telemetry');
const redis = new Redis(TEST_REDIS_URL);
const connection = { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null };
const storeDir = mkdtempSync(join(tmpdir(), 'xyp-stage-telemetry-'));
const store = new LocalDirectoryStore(storeDir);
const registry = new RunRegistry(redis, prefix);
const events = new RunEvents(redis, prefix);
const queue = new Queue('corpus.inspect', { connection, prefix });
// The real producer; its module lookup is the one queue this test has.
const producer = new StageProducer({ get: () => queue } as unknown as ModuleRef);
const runtime = new StageRuntime(registry, events, store, producer);
const metrics = new Registry();
const spans = new InMemorySpanExporter();
const lines: string[] = [];
let worker: Worker;

const inspectResult = { docs: 2, rejected: 0, chars: 10, categories: { news: { docs: 2, chars: 10 } }, rejectReasons: {} };

/** Somewhere deep inside a stage's work: a helper that knows nothing of the job and logs. */
async function deepHelper(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 5));
  new Logger('DeepHelper').log('scanning documents');
}

/** corpus.inspect that logs from its work and a helper, reports a training loss and commits one artifact. */
class InspectStage extends StageWorker<'corpus.inspect'> {
  readonly stage = 'corpus.inspect' as const;
  failNext = false;

  protected async execute(payload: ParsedPayloadOf<'corpus.inspect'>, context: StageContext): Promise<StageOutput<'corpus.inspect'>> {
    context.log('inspecting');
    await deepHelper();
    await context.progress(2, 2, 'steps', 'step 2/2, loss 1.2500', { loss: 1.25 });
    if (this.failNext) throw new Error('the input went away');
    const entry = await context.store.putObject(payload.runId, this.stage, 'counts.json', JSON.stringify(inspectResult), 'application/json');
    return { result: inspectResult, artifacts: [entry] };
  }
}

const inspect = new InspectStage(runtime);
inspect.stageMetrics = new StageJobMetrics(metrics);

beforeAll(() => {
  Logger.overrideLogger(new JsonLogger({ service: 'corpus', instance: 'test-0', levels: ['log', 'warn', 'error'], write: (line) => lines.push(line) }));
  startTracing({ exporter: spans, batch: false });
  worker = new Worker('corpus.inspect', (job: Job, token?: string) => inspect.process(job, token), { connection, prefix });
});

afterAll(async () => {
  Logger.overrideLogger(['log', 'warn', 'error']);
  await stopTracing();
  await worker.close(true);
  await queue.close();
  await dropPrefix(redis, prefix);
  redis.disconnect();
  rmSync(storeDir, { recursive: true, force: true });
});

async function newRun(runId: string): Promise<void> {
  const now = new Date().toISOString();
  await registry.create({ runId, status: 'queued', stages: ['corpus.inspect'], inputName: 'corpus.jsonl', createdAt: now, updatedAt: now });
}

async function settled(jobId: string): Promise<string> {
  return eventually(async () => {
    const state = await (await queue.getJob(jobId))?.getState();
    return state === 'completed' || state === 'failed' ? state : undefined;
  }, 30_000, `job ${jobId} to settle`);
}

async function sample(name: string, labels: string): Promise<number | undefined> {
  const text = await metrics.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('StageWorker telemetry', () => {
  it('writes every log line as JSON, those from inside the job (a helper that is handed nothing included) with its run, stage instance, job and trace ids', async () => {
    await newRun('tel-logs');
    const job = await producer.enqueue('corpus.inspect', { runId: 'tel-logs', instance: 'k1', inputKey: 'runs/tel-logs/input/objects/x' });
    expect(await settled(String(job.id))).toBe('completed');

    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.length).toBeGreaterThan(0);
    for (const entry of parsed) {
      expect(entry).toMatchObject({ level: expect.any(String), service: 'corpus', instance: 'test-0', msg: expect.any(String) });
      expect(Number.isNaN(Date.parse(String(entry.time)))).toBe(false);
    }
    const ofJob = parsed.filter((entry) => entry.jobId === 'tel-logs.corpus.inspect#k1');
    expect(ofJob.map((entry) => entry.msg)).toEqual(['run tel-logs job tel-logs.corpus.inspect#k1: inspecting', 'scanning documents']);
    for (const entry of ofJob) {
      expect(entry).toMatchObject({ runId: 'tel-logs', stage: 'corpus.inspect', stageInstance: 'corpus.inspect#k1', attempt: 1, traceId: expect.stringMatching(/^[0-9a-f]{32}$/) });
    }
    expect(ofJob[1].context).toBe('DeepHelper');
  });

  it('records job durations and outcomes (completed, skipped-committed, failed) and the training loss of the instance', async () => {
    await newRun('tel-metrics');
    const payload = { runId: 'tel-metrics', instance: 'k2', inputKey: 'runs/tel-metrics/input/objects/x' };
    const before = { completed: (await sample('xyp_stage_jobs_total', 'stage="corpus.inspect",outcome="completed"')) ?? 0 };
    expect(await settled(String((await producer.enqueue('corpus.inspect', payload)).id))).toBe('completed');
    // Delivered again (another job id): the committed manifest is found and nothing runs.
    expect(await settled(String((await producer.enqueue('corpus.inspect', payload, { jobId: 'tel-metrics.again' })).id))).toBe('completed');
    await newRun('tel-failed');
    inspect.failNext = true;
    expect(await settled(String((await producer.enqueue('corpus.inspect', { runId: 'tel-failed', inputKey: 'x' }, { attempts: 1 })).id))).toBe('failed');
    inspect.failNext = false;

    expect(await sample('xyp_stage_jobs_total', 'stage="corpus.inspect",outcome="completed"')).toBe(before.completed + 1);
    expect(await sample('xyp_stage_jobs_total', 'stage="corpus.inspect",outcome="skipped-committed"')).toBe(1);
    expect(await sample('xyp_stage_jobs_total', 'stage="corpus.inspect",outcome="failed"')).toBe(1);
    expect(await sample('xyp_stage_job_duration_seconds_count', 'stage="corpus.inspect",outcome="failed"')).toBe(1);
    expect(await sample('xyp_training_loss', 'stage="corpus.inspect",instance="k2"')).toBe(1.25);
  });

  it("runs the job in a span whose parent is the span that added the job (the producer's trace id and span id, carried as traceparent in the job data)", async () => {
    await newRun('tel-trace');
    const submit = startSpan('PipelineController.submitRun', { kind: SpanKind.SERVER });
    expect(submit).toBeDefined();
    const job = await withTelemetryScope({ fields: {}, span: submit }, () => producer.enqueue('corpus.inspect', { runId: 'tel-trace', inputKey: 'runs/tel-trace/input/objects/x' }));
    endSpan(submit);
    const { traceId, spanId } = submit!.spanContext();
    expect((job.data as { trace?: { traceparent: string } }).trace?.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    expect(await settled(String(job.id))).toBe('completed');

    const workerSpan = await eventually(() => spans.getFinishedSpans().find((s) => s.attributes['xyp.job_id'] === String(job.id)), 10_000, 'the worker span');
    expect(workerSpan.name).toBe('corpus.inspect');
    expect(workerSpan.kind).toBe(SpanKind.CONSUMER);
    expect(workerSpan.spanContext().traceId).toBe(traceId);
    expect(workerSpan.parentSpanContext?.spanId).toBe(spanId);
    expect(workerSpan.attributes).toMatchObject({ 'xyp.stage': 'corpus.inspect', 'xyp.stage_instance': 'corpus.inspect', 'xyp.run_id': 'tel-trace', 'xyp.attempt': 1, 'xyp.outcome': 'completed' });
  });
});
