import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { parseIndex } from '@xyp/bucketing';
import { redisSettings } from '@xyp/config';
import { BucketManifest, type StageManifest } from '@xyp/contracts';
import { submitRunRequest, unary } from '@xyp/grpc';
import { WORKSPACE_ROOT } from '@xyp/launcher';
import { LocalDirectoryStore } from '@xyp/storage';
import { RunEvents } from '@xyp/runs';
import { TEST_REDIS_URL, eventually } from '@xyp/testing';
import { PlatformHarness } from './platform-harness';

const sampleLines = readFileSync(join(WORKSPACE_ROOT, 'data', 'sample', 'corpus.jsonl'), 'utf8').split('\n').filter(Boolean);
/** 600 sample documents with four bad lines among them (lines 3, 101, 202 and 303 of the input). */
function inputWithRejects(): Buffer {
  const lines: Buffer[] = sampleLines.slice(0, 600).map((line) => Buffer.from(line));
  lines.splice(2, 0, Buffer.from('{"id": "cut-off", "text": "no closing'));
  lines.splice(100, 0, Buffer.from(JSON.stringify({ id: 'no-text', category: 'news' })));
  lines.splice(201, 0, Buffer.from(JSON.stringify({ id: 'numeric', text: 42, category: 'news' })));
  lines.splice(302, 0, Buffer.concat([Buffer.from('{"id":"bytes","text":"'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('","category":"news"}')]));
  return Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\n')]));
}

/** 6 shards of 100 lines each (windows of 50 lines). */
const SHARDED = { 'corpus.bucket.window_lines': '50', 'corpus.bucket.shard_lines': '100', 'corpus.bucket.seed': '7' };

describe('corpus.bucket through the platform', () => {
  const harness = new PlatformHarness('bucket');
  const store = () => new LocalDirectoryStore(harness.storeDir);

  async function runToEnd(runId: string, params: Record<string, string>, input: Buffer): Promise<string> {
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId, stages: ['corpus.bucket'], inputJsonl: input, inputName: `${runId}.jsonl`, params }));
    return eventually(
      async () => {
        const { run } = await unary(harness.client.getRun.bind(harness.client), { runId });
        const status = String(run?.status);
        return status === 'RUN_STATUS_COMPLETED' || status === 'RUN_STATUS_FAILED' ? `${status} ${run?.error}` : undefined;
      },
      90_000,
      `run ${runId} to end`,
    );
  }

  beforeAll(async () => {
    await Promise.all([harness.start('control-plane'), harness.start('corpus')]);
  }, 90_000);
  afterAll(() => harness.stopAll(), 30_000);

  let single: StageManifest;

  it('packs a sharded input with one worker, counting every rejected line by reason with its line number', async () => {
    expect(await runToEnd('run-bucket-one', SHARDED, inputWithRejects())).toMatch(/^RUN_STATUS_COMPLETED/);
    single = (await store().readManifest('run-bucket-one', 'corpus.bucket'))!;
    expect(single.result).toMatchObject({
      documentsIn: 604,
      kept: 600,
      rejected: 4,
      rejectsByReason: { 'malformed-json': 1, 'missing-text': 1, 'wrong-type': 1, 'invalid-utf8': 1 },
      shards: 7,
      strategy: 'bucket',
    });
    const rejects = single.artifacts.find((a) => a.name === 'rejects.jsonl')!;
    const lines = (await store().getObject(rejects.key)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; reason: string });
    expect(lines.map((r) => [r.line, r.reason])).toEqual([
      [3, 'malformed-json'],
      [101, 'missing-text'],
      [202, 'wrong-type'],
      [303, 'invalid-utf8'],
    ]);
  });

  it('writes Megatron indexed datasets whose index agrees with the bucketing manifest', async () => {
    const manifestEntry = single.artifacts.find((a) => a.name === 'manifest.json')!;
    const bucketing = BucketManifest.parse(JSON.parse((await store().getObject(manifestEntry.key)).toString('utf8')));
    expect(bucketing.input.documentsIn).toBe(bucketing.input.kept + bucketing.input.rejected);
    for (const bucket of bucketing.buckets.filter((b) => b.sequences > 0)) {
      const idx = single.artifacts.find((a) => a.name === `${bucket.prefix}.idx`)!;
      const index = parseIndex(await store().getObject(idx.key));
      expect(index.dtype).toBe('int32');
      expect(index.documentIndices.length - 1).toBe(bucket.megatronDocuments);
      expect(index.sequenceLengths.reduce((sum, n) => sum + n, 0)).toBe(bucket.tokens);
    }
  });

  it('writes byte-identical outputs with two workers', async () => {
    await harness.start('corpus');
    expect(await runToEnd('run-bucket-two', SHARDED, inputWithRejects())).toMatch(/^RUN_STATUS_COMPLETED/);
    const two = (await store().readManifest('run-bucket-two', 'corpus.bucket'))!;
    const files = (m: StageManifest) => m.artifacts.map((a) => `${a.name} ${a.sha256}`).sort();
    expect(files(two)).toEqual(files(single));
    expect(two.result).toEqual(single.result);
  });

  it('fails the run without retries when the reject rate is over the limit', async () => {
    const ended = await runToEnd('run-bucket-rejects', { ...SHARDED, 'corpus.bucket.max_reject_rate': '0.001' }, inputWithRejects());
    expect(ended).toMatch(/^RUN_STATUS_FAILED corpus\.bucket: .*reject/i);
    const queue = new Queue('corpus.bucket', { connection: redisSettings(TEST_REDIS_URL), prefix: harness.prefix });
    expect((await queue.getJob('run-bucket-rejects.corpus.bucket'))?.attemptsMade).toBe(1);
    await queue.close();
    // The message says "see rejects.jsonl": ListArtifacts lists it although no manifest commits it, and it can be fetched.
    expect(await store().readManifest('run-bucket-rejects', 'corpus.bucket')).toBeNull();
    const { artifacts } = await unary(harness.client.listArtifacts.bind(harness.client), { runId: 'run-bucket-rejects', stage: '' });
    const rejects = artifacts.filter((a) => a.name === 'rejects.jsonl');
    expect(rejects).toEqual([expect.objectContaining({ stage: 'corpus.bucket', instance: '', failed: true })]);
    const lines = (await store().getObject(rejects[0].key)).toString('utf8').trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as { reason: string }).reason).sort()).toEqual(['invalid-utf8', 'malformed-json', 'missing-text', 'wrong-type']);
    const byStage = await unary(harness.client.listArtifacts.bind(harness.client), { runId: 'run-bucket-rejects', stage: 'corpus.inspect' });
    expect(byStage.artifacts.filter((a) => a.failed)).toEqual([]);
  });

  it('refuses unknown or bad stage parameters before recording the run', async () => {
    const refused = await unary(
      harness.client.submitRun.bind(harness.client),
      submitRunRequest({ runId: 'run-bucket-bad', stages: ['corpus.bucket'], params: { 'corpus.bucket.strategy': 'zigzag' } }),
    ).then(() => '', (e: { details: string }) => e.details);
    expect(refused).toContain('strategy');
    const unknown = await unary(
      harness.client.submitRun.bind(harness.client),
      submitRunRequest({ runId: 'run-bucket-bad', stages: ['corpus.bucket'], params: { 'corpus.bucket.colour': 'red' } }),
    ).then(() => '', (e: { details: string }) => e.details);
    expect(unknown).toContain('colour');
    expect(await harness.redis.exists(`${harness.prefix}:run:run-bucket-bad`)).toBe(0);
  });

  it('runs corpus.mix as a job: share moves to the category whose loss falls slowly', async () => {
    const losses = [
      { step: 0, category: 'news', loss: 3.0 },
      { step: 0, category: 'finance-encyclopedia', loss: 3.5 },
      { step: 50, category: 'news', loss: 2.2 },
      { step: 50, category: 'finance-encyclopedia', loss: 3.4 },
      { step: 100, category: 'news', loss: 2.0 },
      { step: 100, category: 'finance-encyclopedia', loss: 3.3 },
    ];
    const files = {
      'losses.jsonl': Buffer.from(losses.map((l) => JSON.stringify(l)).join('\n')),
      'weights.json': Buffer.from(JSON.stringify({ news: 0.5, 'finance-encyclopedia': 0.5 })),
    };
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-mix', stages: ['corpus.mix'], files }));
    await eventually(async () => (String((await unary(harness.client.getRun.bind(harness.client), { runId: 'run-mix' })).run?.status) === 'RUN_STATUS_COMPLETED' ? true : undefined), 30_000);
    const result = (await store().readManifest('run-mix', 'corpus.mix'))!.result as { weights: Record<string, number> };
    expect(result.weights['finance-encyclopedia']).toBeGreaterThan(0.5);
    expect(result.weights.news + result.weights['finance-encyclopedia']).toBeCloseTo(1, 12);

    const missing = await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-mix-missing', stages: ['corpus.mix'], files: { 'losses.jsonl': files['losses.jsonl'] } })).then(
      () => '',
      (e: { details: string }) => e.details,
    );
    expect(missing).toContain('needs the input file weights.json');

    const badLosses = Buffer.from(`${JSON.stringify(losses[0])}\n{"step":1,"category":"news","loss":-2}\n`);
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-mix-bad', stages: ['corpus.mix'], files: { ...files, 'losses.jsonl': badLosses } }));
    const error = await eventually(async () => {
      const { run } = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-mix-bad' });
      return String(run?.status) === 'RUN_STATUS_FAILED' ? run?.error : undefined;
    }, 30_000);
    expect(error).toMatch(/^corpus\.mix: losses\.jsonl:2: .*loss/);
  });

  it('cancel stops the active shard part within one batch: the part fails as cancelled, no part completes after it, nothing is committed', async () => {
    // About 24 MB in one shard: tens of seconds of tokenizing, so the part is surely active when cancelled.
    const big = Array.from({ length: 60_000 }, (_, i) => JSON.stringify({ id: `d${i}`, text: `document ${i} about bond yields and 利率 `.repeat(10), category: i % 2 ? 'news' : 'general' }));
    const runId = 'run-bucket-cancel';
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId, stages: ['corpus.bucket'], inputJsonl: Buffer.from(`${big.join('\n')}\n`), inputName: 'big.jsonl' }));
    const events = new RunEvents(harness.redis, harness.prefix);
    await eventually(async () => ((await events.history(runId)).some((e) => e.type === 'stage-progress' && e.unit === 'lines') ? true : undefined), 60_000, 'a shard to report progress');
    const cancelledAt = Date.now();
    await unary(harness.client.cancelRun.bind(harness.client), { runId });
    const queue = new Queue('corpus.bucket', { connection: redisSettings(TEST_REDIS_URL), prefix: harness.prefix });
    try {
      const part = await eventually(
        async () => (await queue.getJobs(['failed'])).find((job) => job.name === 'corpus.bucket.shard' && job.data.runId === runId),
        30_000,
        'the active part to stop',
      );
      expect(part.failedReason).toContain('was cancelled');
      // One progress interval (0.5 s) plus one tokenizer batch, with slack for a loaded machine.
      expect(part.finishedOn! - cancelledAt).toBeLessThan(5_000);
      expect((await queue.getJobs(['completed'])).filter((job) => job.data.runId === runId)).toEqual([]);
    } finally {
      await queue.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const history = await events.history(runId);
    const cancelledIndex = history.findIndex((e) => e.type === 'run-cancelled');
    expect(cancelledIndex).toBeGreaterThan(-1);
    const after = history.slice(cancelledIndex + 1);
    expect(after.filter((e) => e.type === 'stage-progress' && /done/.test(e.message ?? ''))).toEqual([]);
    expect(after.map((e) => e.type)).not.toContain('stage-failed');
    expect(after.some((e) => e.type === 'stage-skipped' && /stopped: run .* was cancelled/.test(e.message ?? ''))).toBe(true);
    expect(await store().readManifest(runId, 'corpus.bucket')).toBeNull();
  }, 120_000);
});
