import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, useNativeKernels } from './backend';
import { MemorySink, loadTrainer, saveTrainer } from './checkpoint';
import { disposeModel, forwardHidden, initParams, lmLogits } from './model';
import { ByteTokenizer } from './tokenizer';
import { Trainer, addCategoryNll, categoryMeans, cptBatch, lmLoss, packDocuments, sftBatch, trainCpt, trainSft, weightedTokenLoss, type SftExample, type SftLogState } from './train';

beforeAll(async () => {
  await initBackend();
});

const tok = new ByteTokenizer();
const config = { vocabSize: tok.vocabSize, contextLength: 32, layers: 2, width: 32, heads: 2 };

function corpus() {
  const docs = Array.from({ length: 30 }, (_, i) => tok.encode(`${'abcd'.repeat(4)} ${i % 3} ${'wxyz'.repeat(3)}`));
  return packDocuments(docs, 24, tok.eosId);
}

describe('training loops', () => {
  it('LM loss falls on a learnable toy corpus', async () => {
    const model = initParams(config, 1);
    const trainer = new Trainer(model, { lr: 1e-2, warmupSteps: 3, totalSteps: 40 }, 1);
    const rows = corpus();
    const probe = cptBatch(rows, [0, 1, 2, 3]);
    const before = tf.tidy(() => lmLoss(model, probe).loss.dataSync()[0]);
    await trainCpt(trainer, rows, { steps: 40, batchSize: 8 });
    const after = tf.tidy(() => lmLoss(model, probe).loss.dataSync()[0]);
    expect(before).toBeGreaterThan(5);
    expect(after).toBeLessThan(0.5 * before);
    trainer.dispose();
    disposeModel(model);
  });

  it('SFT reports per-category loss on assistant tokens every N steps', async () => {
    const model = initParams(config, 2);
    const trainer = new Trainer(model, { lr: 5e-3, warmupSteps: 0, totalSteps: 6 }, 2);
    const examples: SftExample[] = [
      { category: 'finance', messages: [{ role: 'user', content: 'rate?' }, { role: 'assistant', content: '5%' }] },
      { category: 'general', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] },
    ];
    const { log } = await trainSft(trainer, tok, examples, { steps: 6, batchSize: 4, seq: 16, logEvery: 3 });
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
    await trainCpt(trainer, rows, { steps: 3, batchSize: 4 });
    const sink = new MemorySink();
    await saveTrainer(sink, trainer);
    const [expected] = await trainCpt(trainer, rows, { steps: 1, batchSize: 4 });
    const resumed = await loadTrainer(sink);
    const [actual] = await trainCpt(resumed, rows, { steps: 1, batchSize: 4 });
    expect(actual.step).toBe(expected.step);
    expect(Object.is(actual.loss, expected.loss)).toBe(true);
    expect(actual.gradNorm).toBe(expected.gradNorm);
    for (const name of Object.keys(model.params)) {
      expect(Buffer.from(resumed.model.params[name].dataSync().buffer).equals(Buffer.from(model.params[name].dataSync().buffer))).toBe(true);
    }
    expect([...sink.files.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer.json']);
  });
});

/** −log softmax(z)[t] in plain numbers. */
function nllByHand(z: number[], t: number): number {
  const max = Math.max(...z);
  return Math.log(z.reduce((s, x) => s + Math.exp(x - max), 0)) + max - z[t];
}

const paths: [string, boolean][] = [
  ['TF.js kernels', false],
  ['native kernels when built', true],
];

describe.each(paths)('causal-LM loss and its masks on fixed inputs (%s)', (_name, native) => {
  let previous = true;
  beforeAll(() => {
    previous = useNativeKernels(native);
    return () => void useNativeKernels(previous);
  });

  const logits = [
    [2.0, 0.5, -1.0, 0.0],
    [0.1, 0.2, 0.3, 0.4],
    [-2.0, 3.0, 0.5, 1.0],
  ];
  const targets = [0, 3, 2];

  it('is Σ w·(−log p(target)) / Σ w: the mean NLL over the counted positions only', () => {
    const got = tf.tidy(() => {
      const { loss, nll } = weightedTokenLoss(tf.tensor2d(logits), Int32Array.from(targets), Float32Array.from([1, 0, 1]));
      return { loss: loss.dataSync()[0], nll: Array.from(nll.dataSync()) };
    });
    targets.forEach((t, i) => expect(got.nll[i]).toBeCloseTo(nllByHand(logits[i], t), 5));
    expect(got.loss).toBeCloseTo((nllByHand(logits[0], 0) + nllByHand(logits[2], 2)) / 2, 5);
    const all = tf.tidy(() => weightedTokenLoss(tf.tensor2d(logits), Int32Array.from(targets), Float32Array.from([1, 1, 1])).loss.dataSync()[0]);
    expect(all).toBeCloseTo((nllByHand(logits[0], 0) + nllByHand(logits[1], 3) + nllByHand(logits[2], 2)) / 3, 5);
    const none = tf.tidy(() => weightedTokenLoss(tf.tensor2d(logits), Int32Array.from(targets), Float32Array.from([0, 0, 0])).loss.dataSync()[0]);
    expect(none).toBe(0);
  });

  it('lmLoss is that loss on the model’s own logits', () => {
    const model = initParams({ vocabSize: 7, contextLength: 4, layers: 1, width: 8, heads: 2 }, 9);
    const batch = { ids: Int32Array.from([1, 2, 3, 4, 5, 6, 1, 2]), targets: Int32Array.from([2, 3, 4, 5, 6, 1, 2, 3]), weights: Float32Array.from([1, 1, 0, 1, 0, 1, 1, 0]), batch: 2, seq: 4 };
    const { z, loss } = tf.tidy(() => ({
      z: lmLogits(model, forwardHidden(model, batch)).arraySync() as number[][],
      loss: lmLoss(model, batch).loss.dataSync()[0],
    }));
    let sum = 0;
    let count = 0;
    z.forEach((row, n) => {
      sum += batch.weights[n] * nllByHand(row, batch.targets[n]);
      count += batch.weights[n];
    });
    expect(loss).toBeCloseTo(sum / count, 5);
    disposeModel(model);
  });

  it('keeps attention inside each document of a packed row: a token never sees the document before it', () => {
    const model = initParams({ vocabSize: 12, contextLength: 8, layers: 2, width: 8, heads: 2 }, 4);
    const segments = Int32Array.from([0, 0, 0, 1, 1, 1, 1, 1]);
    const positions = Int32Array.from([0, 1, 2, 0, 1, 2, 3, 4]);
    const run = (ids: number[], withSegments: boolean): number[] =>
      tf.tidy(() => Array.from(forwardHidden(model, { ids: Int32Array.from(ids), batch: 1, seq: 8, positions, segments: withSegments ? segments : undefined }).dataSync()));
    const a = run([1, 2, 3, 4, 5, 6, 7, 8], true);
    const b = run([9, 10, 11, 4, 5, 6, 7, 8], true);
    // Document 1 (positions 3-7, width 8 each) is the same whatever document 0 holds ...
    for (let i = 3 * 8; i < 8 * 8; i++) expect(b[i]).toBeCloseTo(a[i], 5);
    // ... which is not so without the segments (so the comparison above can fail).
    const c = run([1, 2, 3, 4, 5, 6, 7, 8], false);
    const d = run([9, 10, 11, 4, 5, 6, 7, 8], false);
    expect(Math.max(...c.slice(24).map((x, i) => Math.abs(x - d[24 + i])))).toBeGreaterThan(1e-3);
    disposeModel(model);
  });
});

describe('CPT and SFT batches', () => {
  it('CPT: targets are the next tokens, counted only inside a document, positions restarting per document', () => {
    // Two documents end to end in one row of T + 1 = 5 tokens.
    const rows = packDocuments([[1, 2, 3], [4, 5]], 4, 0);
    expect(Array.from(rows.tokens)).toEqual([1, 2, 3, 4, 5]);
    expect(Array.from(rows.docIds)).toEqual([0, 0, 0, 1, 1]);
    const batch = cptBatch(rows, [0]);
    expect(Array.from(batch.ids)).toEqual([1, 2, 3, 4]);
    expect(Array.from(batch.targets)).toEqual([2, 3, 4, 5]);
    // 3 → 4 crosses from document 0 into document 1: not a training pair.
    expect(Array.from(batch.weights)).toEqual([1, 1, 0, 1]);
    expect(Array.from(batch.positions!)).toEqual([0, 1, 2, 0]);
    expect(Array.from(batch.segments!)).toEqual([0, 0, 0, 1]);
    // Padding is a one-token document of its own per slot: no target into or out of it.
    const padded = packDocuments([[1, 2, 3]], 4, 0);
    expect(Array.from(padded.tokens)).toEqual([1, 2, 3, 0, 0]);
    expect(Array.from(cptBatch(padded, [0]).weights)).toEqual([1, 1, 0, 0]);
  });

  it('SFT: weight 1 on the assistant’s tokens and its closing <eot> only, not on its role token or the user', () => {
    const examples: SftExample[] = [{ category: 'c', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'ok' }] }];
    const batch = sftBatch(examples, tok, 8);
    // <user> h i <eot> <assistant> o k <eot>
    const sequence = [258, 104, 105, 256, 259, 111, 107, 256];
    expect(Array.from(batch.ids)).toEqual([...sequence.slice(0, 7), 256]);
    expect(Array.from(batch.targets)).toEqual([...sequence.slice(1), 256]);
    // Position t predicts token t + 1: counted when that token is 'o', 'k' or the assistant's <eot>.
    expect(Array.from(batch.weights)).toEqual([0, 0, 0, 0, 1, 1, 1, 0]);
    // A conversation longer than the row keeps its last T + 1 tokens (the prompt's start is cut, the
    // reply is whole); its counted targets stay aligned.
    const cut = sftBatch(examples, tok, 6);
    expect(Array.from(cut.ids)).toEqual(sequence.slice(1, 7));
    expect(Array.from(cut.targets)).toEqual(sequence.slice(2, 8));
    expect(Array.from(cut.weights)).toEqual([0, 0, 0, 1, 1, 1]);
  });
});

describe('per-category loss sums', () => {
  it('adds only counted positions, row by row, and averages per counted position', () => {
    const sums: SftLogState = {};
    // Rows of 3: weights [1 0 1 | 0 1 1], NLL [1 2 3 | 4 5 6].
    addCategoryNll(sums, ['a', 'b'], { seq: 3, weights: Float32Array.from([1, 0, 1, 0, 1, 1]) }, [1, 2, 3, 4, 5, 6]);
    expect(sums).toEqual({ a: { nll: 4, tokens: 2 }, b: { nll: 11, tokens: 2 } });
    addCategoryNll(sums, ['a', 'c'], { seq: 3, weights: Float32Array.from([0, 0, 1, 0, 0, 0]) }, [9, 9, 2, 9, 9, 9]);
    expect(sums.a).toEqual({ nll: 6, tokens: 3 });
    // c has no counted position: no mean for it.
    expect(categoryMeans(sums)).toEqual([
      { category: 'a', loss: 2, tokens: 3 },
      { category: 'b', loss: 5.5, tokens: 2 },
    ]);
  });
});
