import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, QueueEvents } from 'bullmq';
import { credentials, loadPackageDefinition, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createPipelineClient, submitRunRequest, unary, type RunEvent } from '@xyp/grpc';
import { redisSettings } from '@xyp/config';
import { RunEvents } from '@xyp/runs';
import { TEST_REDIS_URL, eventually } from '@xyp/testing';
import { PlatformHarness, TINY_RECIPE_PARAMS, jsonl } from './platform-harness';

const docs = [
  { id: 'a1', text: 'The central bank raised the policy rate by 25 basis points.', category: 'news', lang: 'en' },
  { id: 'a2', text: '可转换债券是一种可以在特定时间按特定条件转换为普通股票的债券。', category: 'finance-encyclopedia', lang: 'zh' },
  { id: 'a3', text: 'Index funds track a market index at low cost.', category: 'finance-encyclopedia' },
  '{"id": "broken", "text": ',
  { id: 'a5', text: '', category: 'news' },
];

async function watchAll(harness: PlatformHarness, runId: string, afterEventId = ''): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for await (const message of harness.client.watchRun({ runId, afterEventId }) as AsyncIterable<{ event?: RunEvent }>) {
    if (message.event) events.push(message.event);
  }
  return events;
}

describe('platform end to end: control plane and corpus service as processes', () => {
  const harness = new PlatformHarness('platform');
  let boardUrl = '';

  beforeAll(async () => {
    const [controlPlane] = await Promise.all([harness.start('control-plane'), harness.start('corpus'), harness.start('trainer'), harness.start('reward'), harness.start('rlhf'), harness.start('synthesis')]);
    boardUrl = `${controlPlane.httpUrl}/queues`;
  }, 90_000);
  afterAll(() => harness.stopAll(), 30_000);

  it('runs a submitted run through the corpus worker and streams its stage events on WatchRun', async () => {
    const submitted = await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({
      runId: 'run-e2e-first',
      stages: [],
      inputJsonl: jsonl(docs),
      inputName: 'e2e.jsonl',
      // Two of the five lines are bad on purpose; the default limit (1%) would fail the run.
      // The bundled recipe's training stages on tiny models (the wiring, not the learning).
      params: { 'corpus.bucket.max_reject_rate': '0.5', ...TINY_RECIPE_PARAMS },
    }));
    expect(submitted.created).toBe(true);

    const events = await watchAll(harness, 'run-e2e-first');
    const trail = events.map((e) => `${e.stage}:${String(e.type).replace('RUN_EVENT_TYPE_', '')}`);
    expect(trail[0]).toBe('pipeline.run:RUN_QUEUED');
    expect(trail).toContain('corpus.inspect:STAGE_STARTED');
    expect(trail).toContain('corpus.inspect:STAGE_COMPLETED');
    expect(trail.indexOf('corpus.inspect:STAGE_COMPLETED')).toBeLessThan(trail.indexOf('corpus.bucket:STAGE_STARTED'));
    expect(trail.indexOf('corpus.bucket:STAGE_COMPLETED')).toBeLessThan(trail.indexOf('pipeline.run:STAGE_STARTED'));
    expect(trail.indexOf('reward.evaluate:STAGE_COMPLETED')).toBeLessThan(trail.indexOf('pipeline.run:STAGE_STARTED'));
    expect(trail.indexOf('synthesis.merge:STAGE_COMPLETED')).toBeLessThan(trail.indexOf('pipeline.run:STAGE_STARTED'));
    expect(trail[trail.length - 1]).toBe('pipeline.run:RUN_COMPLETED');

    const { run } = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-e2e-first' });
    expect(run?.status).toBe('RUN_STATUS_COMPLETED');
    expect(run?.reportKey).toMatch(/^runs\/run-e2e-first\/pipeline\.run\/objects\/[0-9a-f]{64}$/);

    const { artifacts } = await unary(harness.client.listArtifacts.bind(harness.client), { runId: 'run-e2e-first', stage: '' });
    const names = artifacts.map((a) => `${a.stage}/${a.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'input/corpus.jsonl',
        'corpus.inspect/summary.json',
        'corpus.bucket/manifest.json',
        'corpus.bucket/bucket_2048.bin',
        'corpus.bucket/bucket_2048.idx',
        'corpus.bucket/rejects.jsonl',
        'pipeline.run/report.json',
        'pipeline.run/report.md',
      ]),
    );
    const summary = artifacts.find((a) => a.name === 'summary.json')!;
    const counted = JSON.parse(readFileSync(join(harness.storeDir, summary.key), 'utf8'));
    expect(counted).toMatchObject({
      docs: 3,
      rejected: 2,
      categories: { news: { docs: 1 }, 'finance-encyclopedia': { docs: 2 } },
      rejectReasons: { 'malformed-json': 1, 'empty-text': 1 },
    });
  }, 180_000);

  it('returns the existing run when the same run id is submitted again', async () => {
    const again = await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({
      runId: 'run-e2e-first',
      stages: [],
      inputJsonl: jsonl(docs.slice(0, 1)),
      inputName: 'other.jsonl',
    }));
    expect(again.created).toBe(false);
    expect(again.run?.inputName).toBe('e2e.jsonl');
  });

  it('replays a finished run to a late watcher and resumes after a given event id', async () => {
    const all = await watchAll(harness, 'run-e2e-first');
    const resumed = await watchAll(harness, 'run-e2e-first', all[1].id);
    expect(resumed.map((e) => e.id)).toEqual(all.slice(2).map((e) => e.id));
  });

  it('answers bad requests with INVALID_ARGUMENT and unknown runs with NOT_FOUND', async () => {
    const failure = (promise: Promise<unknown>) => promise.then(() => null, (e: ServiceError) => e);
    const badId = await failure(unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'Bad:Id', stages: [] })));
    expect(badId?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(badId?.details).toContain('run_id');
    const badStage = await failure(unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: '', stages: ['corpus.nope'] })));
    expect(badStage?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(badStage?.details).toContain('corpus.nope');
    const missing = await failure(unary(harness.client.getRun.bind(harness.client), { runId: 'run-missing' }));
    expect(missing?.code).toBe(GrpcStatus.NOT_FOUND);
  });

  it('refuses a run with a stage this build cannot run, and records nothing', async () => {
    const refused = await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-e2e-cpt', stages: ['pipeline.run'], inputJsonl: jsonl(docs), inputName: '' })).then(
      () => null,
      (e: ServiceError) => e,
    );
    expect(refused?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(refused?.details).toContain('stage pipeline.run cannot be part of a run');
    const missing = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-e2e-cpt' }).then(() => null, (e: ServiceError) => e);
    expect(missing?.code).toBe(GrpcStatus.NOT_FOUND);
  });

  it('cancels a running run: the active stage stops at its next progress report and nothing is committed', async () => {
    const big = Array.from({ length: 150_000 }, (_, i) => ({ id: `d${i}`, text: `document ${i} `.repeat(8), category: i % 2 ? 'news' : 'general' }));
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-e2e-cancel', stages: [], inputJsonl: jsonl(big), inputName: 'big.jsonl' }));
    for await (const message of harness.client.watchRun({ runId: 'run-e2e-cancel', afterEventId: '' }) as AsyncIterable<{ event?: RunEvent }>) {
      if (String(message.event?.type) === 'RUN_EVENT_TYPE_STAGE_PROGRESS') break;
    }
    const { run } = await unary(harness.client.cancelRun.bind(harness.client), { runId: 'run-e2e-cancel' });
    expect(run?.status).toBe('RUN_STATUS_CANCELLED');
    const inspect = new Queue('corpus.inspect', { connection: redisSettings(TEST_REDIS_URL), prefix: harness.prefix });
    await eventually(async () => ((await (await inspect.getJob('run-e2e-cancel.corpus.inspect'))?.getState()) === 'failed' ? true : undefined), 30_000, 'cancelled stage to fail');
    expect((await inspect.getJob('run-e2e-cancel.corpus.inspect'))?.failedReason).toContain('was cancelled');
    await inspect.close();
    const types = (await new RunEvents(harness.redis, harness.prefix).history('run-e2e-cancel')).map((e) => `${e.stage}:${e.type}`);
    expect(types).toContain('pipeline.run:run-cancelled');
    // A cancelled stage stops without failing: it is skipped, not failed.
    expect(types).toContain('corpus.inspect:stage-skipped');
    expect(types).not.toContain('corpus.inspect:stage-failed');
    expect(types).not.toContain('corpus.inspect:stage-completed');
    expect(types).not.toContain('pipeline.run:stage-started');
    expect((await unary(harness.client.getRun.bind(harness.client), { runId: 'run-e2e-cancel' })).run?.status).toBe('RUN_STATUS_CANCELLED');
  });

  it('fails a job with an invalid payload at once, with a reason naming the field, and does not retry it', async () => {
    const connection = redisSettings(TEST_REDIS_URL);
    const queue = new Queue('corpus.inspect', { connection, prefix: harness.prefix });
    const events = new QueueEvents('corpus.inspect', { connection, prefix: harness.prefix });
    await events.waitUntilReady();
    const job = await queue.add('corpus.inspect', { runId: 'run-e2e-bad', inputKey: 42 }, { jobId: 'bad-payload-1', attempts: 5, backoff: { type: 'fixed', delay: 100 } });
    await expect(job.waitUntilFinished(events, 20_000)).rejects.toThrow(/invalid corpus\.inspect payload .*inputKey/);
    const failed = await queue.getJob('bad-payload-1');
    expect(failed?.attemptsMade).toBe(1);
    expect(await failed?.getState()).toBe('failed');
    await new Promise((r) => setTimeout(r, 500));
    expect(await (await queue.getJob('bad-payload-1'))?.getState()).toBe('failed');
    await events.close();
    await queue.close();
  });

  it('has a registered trainer worker that fails a cpt job with a bad payload without retry, naming the field', async () => {
    const queue = new Queue('cpt', { connection: redisSettings(TEST_REDIS_URL), prefix: harness.prefix });
    const events = new QueueEvents('cpt', { connection: redisSettings(TEST_REDIS_URL), prefix: harness.prefix });
    await events.waitUntilReady();
    const job = await queue.add('cpt', { runId: 'run-e2e-cpt-direct', shardsStage: 'corpus.bucket', steps: 10 }, { jobId: 'cpt-direct-1', attempts: 3 });
    await expect(job.waitUntilFinished(events, 20_000)).rejects.toThrow(/invalid cpt payload in job cpt-direct-1: shardsManifestKey: /);
    expect((await queue.getJob('cpt-direct-1'))?.attemptsMade).toBe(1);
    await events.close();
    await queue.close();
  });

  it('serves gRPC health and server reflection', async () => {
    const health = loadPackageDefinition(loadSync(require.resolve('grpc-health-check/proto/health/v1/health.proto'), { enums: String })) as never as {
      grpc: { health: { v1: { Health: new (address: string, creds: unknown) => { check: (req: object, cb: (e: Error | null, r: { status: string }) => void) => void; close(): void } } } };
    };
    const healthClient = new health.grpc.health.v1.Health(`127.0.0.1:${harness.grpcPort}`, credentials.createInsecure());
    const serving = await new Promise<{ status: string }>((resolve, reject) =>
      healthClient.check({ service: '' }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(serving.status).toBe('SERVING');
    healthClient.close();

    const reflectionProto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto');
    const reflection = loadPackageDefinition(loadSync(reflectionProto)) as never as {
      grpc: { reflection: { v1alpha: { ServerReflection: new (address: string, creds: unknown) => { serverReflectionInfo: () => NodeJS.ReadWriteStream & { write(m: object): void; end(): void }; close(): void } } } };
    };
    const reflectionClient = new reflection.grpc.reflection.v1alpha.ServerReflection(`127.0.0.1:${harness.grpcPort}`, credentials.createInsecure());
    const call = reflectionClient.serverReflectionInfo();
    const listed = new Promise<string[]>((resolve, reject) => {
      call.on('data', (message: { listServicesResponse?: { service: { name: string }[] } }) =>
        resolve(message.listServicesResponse?.service.map((s) => s.name) ?? []),
      );
      call.on('error', reject);
    });
    call.write({ listServices: '' });
    const services = await listed;
    call.end();
    reflectionClient.close();
    expect(services).toEqual(expect.arrayContaining(['xuanyuan.v1.PipelineService', 'xuanyuan.v1.RewardService']));
  });

  it('protects Bull Board with credentials and lists every queue', async () => {
    expect((await fetch(boardUrl)).status).toBe(401);
    expect((await fetch(`${boardUrl}/api/queues`)).status).toBe(401);
    const wrong = `Basic ${Buffer.from('admin:wrong-password').toString('base64')}`;
    expect((await fetch(boardUrl, { headers: { authorization: wrong } })).status).toBe(401);
    const auth = `Basic ${Buffer.from(`admin:${harness.boardPassword}`).toString('base64')}`;
    expect((await fetch(boardUrl, { headers: { authorization: auth } })).status).toBe(200);
    const api = (await (await fetch(`${boardUrl}/api/queues`, { headers: { authorization: auth } })).json()) as { queues: { name: string }[] };
    expect(api.queues.map((q) => q.name)).toEqual(expect.arrayContaining(['pipeline.run', 'corpus.inspect', 'cpt', 'reward.train', 'rlhf.ppo']));
  });

  it('exports BullMQ job counts of every queue, the oldest waiting job and its own job outcomes for Prometheus', async () => {
    const metrics = await (await fetch(`${harness.services.get('control-plane')!.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/bullmq_job_count\{queue="corpus\.inspect", state="completed"\} [1-9]/);
    // Every queue (KEDA reads them here), one TYPE line for the family.
    expect(metrics).toMatch(/bullmq_job_count\{queue="rlhf\.ppo", state="waiting"\} \d/);
    expect(metrics.match(/^# TYPE bullmq_job_count gauge$/gm)).toHaveLength(1);
    expect(metrics).toMatch(/xyp_queue_oldest_waiting_seconds\{queue="corpus\.inspect"\} \d/);
    expect(metrics).toMatch(/xyp_stage_jobs_total\{stage="pipeline\.step",outcome="completed"\} [1-9]/);
    expect(metrics).toContain('process_cpu_user_seconds_total');
  });

  it('exports the synthesis service\'s LLM gateway metrics for Prometheus', async () => {
    const metrics = await (await fetch(`${harness.services.get('synthesis')!.httpUrl}/metrics`)).text();
    // The first run's generators called the run's cpt policy through the gateway.
    expect(metrics).toMatch(/xyp_llm_requests_total\{model="cpt",outcome="ok"\} [1-9]/);
    expect(metrics).toMatch(/xyp_llm_tokens_total\{model="cpt",kind="completion"\} [1-9]/);
    // The same registry holds the service's stage job outcomes.
    expect(metrics).toMatch(/xyp_stage_jobs_total\{stage="synthesis\.[a-z]+",outcome="completed"\} [1-9]/);
  });

  it('keeps a client usable across calls with a deadline', async () => {
    const client = createPipelineClient(`127.0.0.1:${harness.grpcPort}`);
    const { run } = await unary(client.getRun.bind(client), { runId: 'run-e2e-first' }, 5_000);
    expect(run?.runId).toBe('run-e2e-first');
    client.close();
    await eventually(async () => ((await harness.redis.exists(`${harness.prefix}:run:run-e2e-first`)) ? true : undefined));
  });
});
