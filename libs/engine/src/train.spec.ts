import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { MemorySink, loadTrainer, saveTrainer } from './checkpoint';
import { disposeModel, initParams } from './model';
import { ByteTokenizer } from './tokenizer';
import { Trainer, cptBatch, lmLoss, packDocuments, trainCpt, trainSft, type SftExample } from './train';

beforeAll(async () => {
  await initBackend();
});

const tok = new ByteTokenizer();
const config = { vocabSize: tok.vocabSize, contextLength: 32, layers: 2, width: 32, heads: 2 };

function corpus() {
  const docs = Array.from({ length: 30 }, (_, i) => tok.encode(`${'abcd'.repeat(4)} ${i % 3} ${'wxyz'.repeat(3)}`));
  return packDocuments(docs, 24, tok.eos);
}

describe('training loops', () => {
  it('LM loss falls on a learnable toy corpus', () => {
    const model = initParams(config, 1);
    const trainer = new Trainer(model, { lr: 1e-2, warmupSteps: 3, totalSteps: 40 }, 1);
    const rows = corpus();
    const probe = cptBatch(rows, [0, 1, 2, 3]);
    const before = tf.tidy(() => lmLoss(model, probe).loss.dataSync()[0]);
    trainCpt(trainer, rows, { steps: 40, batchSize: 8 });
    const after = tf.tidy(() => lmLoss(model, probe).loss.dataSync()[0]);
    expect(before).toBeGreaterThan(5);
    expect(after).toBeLessThan(0.5 * before);
    trainer.dispose();
    disposeModel(model);
  });

  it('SFT reports per-category loss on assistant tokens every N steps', () => {
    const model = initParams(config, 2);
    const trainer = new Trainer(model, { lr: 5e-3, warmupSteps: 0, totalSteps: 6 }, 2);
    const examples: SftExample[] = [
      { category: 'finance', messages: [{ role: 'user', content: 'rate?' }, { role: 'assistant', content: '5%' }] },
      { category: 'general', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] },
    ];
    const { log } = trainSft(trainer, tok, examples, { steps: 6, batchSize: 4, seq: 16, logEvery: 3 });
    expect(new Set(log.map((l) => l.step))).toEqual(new Set([3, 6]));
    for (const line of log) {
      expect(Object.keys(line).sort()).toEqual(['category', 'loss', 'step', 'tokens']);
      expect(['finance', 'general']).toContain(line.category);
      expect(line.loss).toBeGreaterThan(0);
      // Assistant tokens only: '5%' + <eot> = 3 tokens, 'hello' + <eot> = 6 tokens per example.
      expect(line.tokens % (line.category === 'finance' ? 3 : 6)).toBe(0);
    }
    trainer.dispose();
    disposeModel(model);
  });

  it('save and resume reproduce the next step loss and weights exactly', async () => {
    const rows = corpus();
    const model = initParams({ ...config, dropout: 0.1 }, 3);
    const trainer = new Trainer(model, { lr: 3e-3, warmupSteps: 2, totalSteps: 10 }, 3);
    trainCpt(trainer, rows, { steps: 3, batchSize: 4 });
    const sink = new MemorySink();
    await saveTrainer(sink, trainer);
    const [expected] = trainCpt(trainer, rows, { steps: 1, batchSize: 4 });
    const resumed = await loadTrainer(sink);
    const [actual] = trainCpt(resumed, rows, { steps: 1, batchSize: 4 });
    expect(actual.step).toBe(expected.step);
    expect(Object.is(actual.loss, expected.loss)).toBe(true);
    expect(actual.gradNorm).toBe(expected.gradNorm);
    for (const name of Object.keys(model.params)) {
      expect(Buffer.from(resumed.model.params[name].dataSync().buffer).equals(Buffer.from(model.params[name].dataSync().buffer))).toBe(true);
    }
    expect([...sink.files.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer.json']);
  });
});
