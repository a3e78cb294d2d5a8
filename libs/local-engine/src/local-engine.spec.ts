import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryStore, bucketCorpus, inProcessRunner, parsePackConfig, tokenDtypeFor, type TokenEncoder } from '@xyp/bucketing';
import type { EngineJob } from '@xyp/contracts';
import { LocalDirectoryStore } from '@xyp/storage';
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

/** A local job's result, after committing the manifest it returns (the engine commits nothing). */
async function committed(job: EngineJob): Promise<Extract<EngineJob, { engine: 'local' }>> {
  if (job.engine !== 'local') throw new Error('expected a local job');
  expect(job.status).toBe('completed');
  expect(await store.readManifest(job.manifest.runId, job.manifest.stage)).toBeNull();
  expect((await store.commitManifest(job.manifest)).committed).toBe(true);
  return job;
}

const tiny = { layers: 1, width: 16, heads: 2, context: 48 };

describe('local engine', () => {
  it('runs CPT, SFT, reward model and PPO in turn, each from the checkpoint ID the previous one committed', async () => {
    const corpus = jsonl('corpus.jsonl', Array.from({ length: 12 }, (_, i) => ({ id: `d${i}`, text: `rates rose ${i} bp`, category: 'news' })));
    const cpt = await committed(await engine.trainCausalLm({ runId: 'chain', data: { jsonl: corpus }, steps: 4, batchSize: 4, optimizer: { lr: 1e-2, warmupSteps: 0 }, architecture: tiny }));
    expect(cpt.checkpoint).toBe('chain/engine.lm');
    expect(cpt.metrics.steps).toBe(4);
    expect(cpt.metrics.finalLoss).toBeLessThan(cpt.metrics.initialLoss);

    const sftData = jsonl('sft.jsonl', [
      { category: 'finance', messages: [{ role: 'user', content: 'rate?' }, { role: 'assistant', content: '5%' }] },
      { category: 'general', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] },
    ]);
    const sft = await committed(await engine.trainSft({ runId: 'chain', data: { jsonl: sftData }, init: cpt.checkpoint, steps: 2, batchSize: 2, logEvery: 1 }));
    expect(sft.checkpoint).toBe('chain/engine.sft');
    const log = (await store.readManifest('chain', 'engine.sft'))!.artifacts.map((a) => a.name);
    expect(log).toContain('sft-category-loss.jsonl');

    const prefs = jsonl('prefs.jsonl', [
      { prompt: 'rate?', chosen: '5%', rejected: 'no idea' },
      { prompt: 'trend?', chosen: 'up 3%', rejected: '??' },
    ]);
    const rm = await committed(await engine.trainRewardModel({ runId: 'chain', data: { jsonl: prefs }, init: sft.checkpoint, steps: 2, batchSize: 2 }));
    expect(rm.metrics.pairs).toBe(2);

    const prompts = jsonl('prompts.jsonl', [{ prompt: 'rate?' }, { prompt: 'trend?' }]);
    const ppo = await committed(
      await engine.runPpo({ runId: 'chain', data: { jsonl: prompts }, policy: sft.checkpoint, rewardModel: rm.checkpoint, promptsPerRound: 2, samplesPerPrompt: 2, maxTokens: 4 }),
    );
    expect(ppo.checkpoint).toBe('chain/engine.ppo');
    expect(Number.isFinite(ppo.metrics.lastMeanReward)).toBe(true);

    const texts = await engine.generate({ checkpoint: ppo.checkpoint, prompts: ['rate?'], chat: true, n: 2, maxTokens: 5, seed: 4 });
    expect(texts.map((t) => t.prompt)).toEqual([0, 0]);
    for (const t of texts) expect(t.tokens).toBeLessThanOrEqual(5);
  });

  it('refuses to write a checkpoint ID that is already committed', async () => {
    const corpus = jsonl('taken.jsonl', [{ id: 'd0', text: 'rates', category: 'news' }]);
    await expect(engine.trainCausalLm({ runId: 'chain', data: { jsonl: corpus }, steps: 1, architecture: tiny })).rejects.toThrow(/checkpoint chain\/engine.lm already exists in local:/);
  });

  it('names the file and line of a bad corpus record, and refuses Megatron shards', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify({ id: 'a', text: 'x', category: 'news' })}\n{"id": "b", "text": 3, "category": "news"}\n`);
    await expect(engine.trainCausalLm({ runId: 'bad-data', data: { jsonl: bad }, steps: 1, architecture: tiny })).rejects.toThrow(`${bad}:2: text:`);
    await expect(engine.trainCausalLm({ runId: 'bad-data', data: { megatron: [{ prefix: 'p' }] }, steps: 1 })).rejects.toThrow(/data.jsonl: the local engine/);
  });

  it('trains CPT on the corpus stage’s packed shards, recording the shards’ tokenizer in the manifest it returns', async () => {
    // One token per letter or space, end of document 27: shards of a 24-token bucket.
    const alphabet = 'abcdefghijklmnopqrstuvwxyz ';
    const letters: TokenEncoder = {
      async encodeBatch(texts, options = {}) {
        return texts.map((text) => Int32Array.from([...Array.from(text, (ch) => alphabet.indexOf(ch)), ...(options.appendId === undefined ? [] : [options.appendId])]));
      },
    };
    const words = ['rate', 'rose', 'fell', 'bond', 'yield', 'the'];
    const input = jsonl(
      'letters.jsonl',
      Array.from({ length: 24 }, (_, i) => ({ id: `d${i}`, text: Array.from({ length: 1 + (i % 5) }, (_, w) => words[(i + w) % words.length]).join(' '), category: 'news' })),
    );
    const out = join(dir, 'bucketed');
    const config = parsePackConfig({ strategy: 'bfd', bucketLengths: [24], windowLines: 16, windowTokens: 256, shardLines: 16, batchChars: 200 });
    const tokenizer = { spec: 'letters', name: 'letters', vocabSize: 28, eodId: 27, dtype: tokenDtypeFor(28) };
    const scratch = new DirectoryStore(out);
    const { manifest: packed } = await bucketCorpus({ input, config, tokenizer, out: new DirectoryStore(out), scratch, runShard: inProcessRunner(letters, scratch) });
    expect(packed.buckets.map((b) => b.length)).toEqual([24]);
    const job = await committed(
      await engine.trainCausalLm({
        runId: 'shards-lm',
        data: { shards: { source: out, bucket: 24 } },
        steps: 3,
        batchSize: 4,
        optimizer: { lr: 1e-2, warmupSteps: 0 },
        architecture: { layers: 1, width: 16, heads: 2, context: 32 },
      }),
    );
    expect(job).toMatchObject({ checkpoint: 'shards-lm/engine.lm', metrics: { steps: 3, rows: packed.buckets[0].megatronDocuments } });
    expect(job.manifest.result).toMatchObject({ kind: 'xyp-engine-checkpoint', tokenizer: 'letters', config: { vocabSize: 28, contextLength: 32 }, shards: { bucket: 24 } });
  });
});
