import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStoreSink, checkpointManifest, disposeModel, initBackend, initParams, saveModel } from '@xyp/engine';
import { startFakeOpenAi, type FakeOpenAi } from '@xyp/llm';
import { RewardGrpcModule, RewardModels, RewardScoring, loadRewardModel, startRewardGrpc, type ServedRewardModel } from '@xyp/reward-serving';
import { LocalDirectoryStore } from '@xyp/storage';
import { SftItem } from '@xyp/synthesis';
import type { SynthesisOutcome } from '@xyp/synthesis-stages';
import { freePort } from '@xyp/testing';
import { synthConfig, type SynthOptions, type SynthReport } from './synth';

const root = resolve(__dirname, '../../../..');
const bin = join(root, 'tools/xyp/bin/xyp.js');
const dir = mkdtempSync(join(tmpdir(), 'xyp-cli-synth-'));
const store = new LocalDirectoryStore(join(dir, 'store'));
const REWARD = 'synth-cli/engine.rm';

@Module({ imports: [RewardGrpcModule] })
class RewardAppModule {}

let app: INestApplication;
let address = '';
let server: FakeOpenAi;
let reference: ServedRewardModel;

function xyp(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

const lines = <T>(path: string): T[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);

beforeAll(async () => {
  // A tiny reward checkpoint (a value head on a one-layer model), served by a real RewardService.
  await initBackend();
  const model = initParams({ vocabSize: 260, contextLength: 48, layers: 1, width: 16, heads: 2, lmHead: false, valueHead: true }, 7);
  const sink = new ArtifactStoreSink(store, 'synth-cli', 'engine.rm');
  await saveModel(sink, model);
  expect((await store.commitManifest(checkpointManifest(sink))).committed).toBe(true);
  disposeModel(model);
  reference = await loadRewardModel(REWARD, { store });
  const models = new RewardModels((id) => loadRewardModel(id, { store }));
  await models.load(REWARD, { makeCurrent: true });
  app = await NestFactory.create(RewardAppModule, { logger: false });
  address = `127.0.0.1:${await freePort()}`;
  await startRewardGrpc(app, new RewardScoring(models), address);
  await app.init();
  server = await startFakeOpenAi({ respond: (body) => `${body.model}: ${body.messages.at(-1)?.content.slice(0, 40)}` });
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  reference?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('xyp synth', () => {
  it('ensemble: answers, scores over gRPC with a real RewardService, fuses, and prints the JSON summary; merge joins it', async () => {
    const registry = join(dir, 'models.yaml');
    writeFileSync(registry, ['models:', ...['alpha', 'beta', 'fuse'].flatMap((name) => [`  - name: ${name}`, `    baseUrl: ${server.url}`, `    model: ${name}-model`, '    timeoutMs: 5000'])].join('\n'));
    const input = join(dir, 'queries.jsonl');
    const queries = [
      { id: 'q1', category: 'wealth.asset-allocation', query: '30岁应该如何配置资产？' },
      { id: 'q2', category: 'wealth.asset-allocation', query: '股票基金和债券基金怎么搭配？' },
      { id: 'q3', category: 'insurance.claims', query: '医疗险理赔要准备哪些材料？' },
      { id: 'q4', category: 'insurance.claims', query: '被拒赔了怎么办？' },
    ];
    writeFileSync(input, [...queries.map((q) => JSON.stringify(q)), '{"id": "q5", "category": '].join('\n'));
    const out = join(dir, 'out');
    const run = await xyp(['synth', 'ensemble', '--input', input, '--models', registry, '--out', out, '--reward', address, '--ensemble', 'alpha,beta', '--aggregator', 'fuse', '--threshold-quantile', '0.5', '--chunk-size', '2', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as SynthReport;
    expect(report.generator).toBe('ensemble');
    expect(report.accounting).toMatchObject({ inputs: 5, failed: 1, failedByReason: { 'malformed-json': 1 } });
    expect(report.accounting.kept + report.accounting.dropped).toBe(4);
    expect(report.chunks).toEqual({ chunkSize: 2, total: 3, committedBefore: 0, processed: 3 });
    expect(Object.keys(report.gateway).sort()).toEqual(['alpha', 'beta', 'fuse']);
    expect(report.gateway['fuse']).toMatchObject({ answered: report.accounting.kept, cacheHits: 0 });
    expect(report.gateway['alpha']).toMatchObject({ answered: 4, cacheHits: 0 });
    expect(report.config).toMatchObject({ models: { ensemble: ['alpha', 'beta'], aggregator: 'fuse' }, selection: { threshold: { quantile: 0.5 } } });
    expect(run.stderr).toContain(`synth ensemble: 5/5 inputs (kept ${report.accounting.kept}, dropped ${report.accounting.dropped}, failed 1), ${report.items} items`);

    const items = lines<unknown>(report.files.sft).map((i) => SftItem.parse(i));
    const outcomes = lines<SynthesisOutcome>(report.files.outcomes);
    expect(outcomes.map((o) => o.id)).toEqual(['q1', 'q2', 'q3', 'q4', expect.stringMatching(/^line-5-/)]);
    expect(items.map((i) => i.id)).toEqual(outcomes.filter((o) => o.status === 'kept').map((o) => `${o.id}/fused`));
    // Every candidate's score is the reward checkpoint's (as in process, to float32 rounding), and a
    // query survives iff its best answer reaches its category's median (chunks of 2 = one category each).
    const scoresOf = (q: (typeof queries)[number]): number[] => {
      const outcome = outcomes.find((o) => o.id === q.id);
      if (outcome?.status === 'dropped') return (outcome.scores ?? []).map((s) => s ?? NaN);
      return (items.find((i) => i.id === `${q.id}/fused`)?.provenance.candidates ?? []).map((c) => c.score ?? NaN);
    };
    for (const pair of [queries.slice(0, 2), queries.slice(2, 4)]) {
      const all: number[] = [];
      for (const q of pair) {
        const expected = await reference.score(['alpha', 'beta'].map((m) => ({ prompt: q.query, response: `${m}-model: ${q.query.slice(0, 40)}` })));
        scoresOf(q).forEach((s, i) => expect(Math.abs(s - expected[i])).toBeLessThan(1e-5));
        all.push(...expected);
      }
      const sorted = [...all].sort((a, b) => a - b);
      const median = (sorted[1] + sorted[2]) / 2;
      for (const q of pair) expect(outcomes.find((o) => o.id === q.id)?.status).toBe(Math.max(...scoresOf(q)) >= median - 1e-6 ? 'kept' : 'dropped');
    }

    const merged = await xyp(['synth', 'merge', '--inputs', out, '--out', join(dir, 'merged'), '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    expect(JSON.parse(merged.stdout)).toMatchObject({ items: items.length, kept: items.length, exactDuplicates: 0, nearDuplicates: 0, byGenerator: { ensemble: { items: items.length, kept: items.length } } });
  });

  it('refuses an ensemble run without a reward model, naming the flags', async () => {
    const run = await xyp(['synth', 'ensemble', '--input', join(dir, 'queries.jsonl'), '--models', join(dir, 'models.yaml'), '--out', join(dir, 'none')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/xyp: synth ensemble needs a reward model: --reward host:port \(a RewardService\) or --reward-checkpoint ID\|DIR/);
  });

  it('defaults the roles: the first model generates, judges and aggregates; every model answers in the ensemble', () => {
    const o: SynthOptions = { input: 'in', models: 'm', out: 'o' };
    const models = ['first', 'second', 'third'];
    expect(synthConfig('selfqa', o, models)).toEqual({ models: { generator: 'first' } });
    expect(synthConfig('evolve', { ...o, judge: 'third', rounds: '2' }, models)).toEqual({ models: { generator: 'first', judge: 'third' }, pool: { maxRounds: 2 } });
    expect(synthConfig('ensemble', { ...o, threshold: '0.3', concurrency: '8' }, models)).toEqual({ concurrency: 8, models: { ensemble: models, aggregator: 'first' }, selection: { threshold: { absolute: 0.3 } } });
    expect(synthConfig('ensemble', o, models)).toMatchObject({ selection: { threshold: { quantile: 0.5 } } });
    expect(() => synthConfig('ensemble', { ...o, ensemble: 'first,fourth' }, models)).toThrow('--ensemble: no model named fourth in --models (models: first, second, third)');
    expect(() => synthConfig('ensemble', { ...o, threshold: '1', thresholdQuantile: '0.5' }, models)).toThrow('give --threshold or --threshold-quantile, not both');
  });
});
