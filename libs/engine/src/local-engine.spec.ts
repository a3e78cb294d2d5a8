import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalDirectoryStore } from '@xyp/storage';
import type { EngineJob } from './engine-interface';
import { LocalEngine } from './local-engine';

const dir = mkdtempSync(join(tmpdir(), 'xyp-local-engine-'));
const store = new LocalDirectoryStore(join(dir, 'store'));
const engine = new LocalEngine({ store });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function jsonl(name: string, rows: unknown[]): string {
  const file = join(dir, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));
  return file;
}

function local(job: EngineJob): Extract<EngineJob, { engine: 'local' }> {
  if (job.engine !== 'local') throw new Error('expected a local job');
  expect(job.status).toBe('completed');
  return job;
}

const tiny = { layers: 1, width: 16, heads: 2, context: 48 };

describe('local engine', () => {
  it('runs CPT, SFT, reward model and PPO in turn, each from the checkpoint ID the previous one committed', async () => {
    const corpus = jsonl('corpus.jsonl', Array.from({ length: 12 }, (_, i) => ({ id: `d${i}`, text: `rates rose ${i} bp`, category: 'news' })));
    const cpt = local(await engine.trainCausalLm({ runId: 'chain', data: { jsonl: corpus }, steps: 4, batchSize: 4, optimizer: { lr: 1e-2, warmupSteps: 0 }, architecture: tiny }));
    expect(cpt.checkpoint).toBe('chain/engine.lm');
    expect(cpt.metrics.steps).toBe(4);
    expect(cpt.metrics.finalLoss).toBeLessThan(cpt.metrics.initialLoss);

    const sftData = jsonl('sft.jsonl', [
      { category: 'finance', messages: [{ role: 'user', content: 'rate?' }, { role: 'assistant', content: '5%' }] },
      { category: 'general', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] },
    ]);
    const sft = local(await engine.trainSft({ runId: 'chain', data: { jsonl: sftData }, init: cpt.checkpoint, steps: 2, batchSize: 2, logEvery: 1 }));
    expect(sft.checkpoint).toBe('chain/engine.sft');
    const log = (await store.readManifest('chain', 'engine.sft'))!.artifacts.map((a) => a.name);
    expect(log).toContain('sft-category-loss.jsonl');

    const prefs = jsonl('prefs.jsonl', [
      { prompt: 'rate?', chosen: '5%', rejected: 'no idea' },
      { prompt: 'trend?', chosen: 'up 3%', rejected: '??' },
    ]);
    const rm = local(await engine.trainRewardModel({ runId: 'chain', data: { jsonl: prefs }, init: sft.checkpoint, steps: 2, batchSize: 2 }));
    expect(rm.metrics.pairs).toBe(2);

    const prompts = jsonl('prompts.jsonl', [{ prompt: 'rate?' }, { prompt: 'trend?' }]);
    const ppo = local(
      await engine.runPpo({ runId: 'chain', data: { jsonl: prompts }, policy: sft.checkpoint, rewardModel: rm.checkpoint, promptsPerRound: 2, samplesPerPrompt: 2, maxTokens: 4 }),
    );
    expect(ppo.checkpoint).toBe('chain/engine.ppo');
    expect(Number.isFinite(ppo.metrics.lastMeanReward)).toBe(true);

    const texts = await engine.generate({ checkpoint: ppo.checkpoint, prompts: ['rate?'], chat: true, n: 2, maxTokens: 5, seed: 4 });
    expect(texts.map((t) => t.prompt)).toEqual([0, 0]);
    for (const t of texts) expect(t.tokens).toBeLessThanOrEqual(5);
  });

  it('names the file and line of a bad corpus record, and refuses Megatron shards', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify({ id: 'a', text: 'x', category: 'news' })}\n{"id": "b", "text": 3, "category": "news"}\n`);
    await expect(engine.trainCausalLm({ runId: 'bad-data', data: { jsonl: bad }, steps: 1, architecture: tiny })).rejects.toThrow(`${bad}:2: text:`);
    await expect(engine.trainCausalLm({ runId: 'bad-data', data: { megatron: [{ prefix: 'p' }] }, steps: 1 })).rejects.toThrow(/data.jsonl: the local engine/);
  });
});
