import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { generate, generateAsync, type GenerationStep, type Sample } from './generate';
import { forwardHidden, initParams, lmLogits, type Model, type ModelConfigInput } from './model';
import { nativeBlas, useNativeKernels } from './native';
import { tokenNll } from './ops';
import { StreamingScorer } from './streaming-score';

beforeAll(async () => {
  await initBackend();
});

const streamingAvailable = (): boolean => typeof nativeBlas()?.decodeScoreAsync === 'function';

/** A model with weights moved off the init, so that positions and context matter. */
function moved(config: ModelConfigInput, seed: number): Model {
  const m = initParams(config, seed);
  for (const p of Object.values(m.params)) {
    const next = tf.tidy(() => tf.add(p, tf.mul(tf.randomNormal(p.shape, 0, 1, 'float32', seed + 7), 0.3)));
    p.assign(next);
    next.dispose();
  }
  return m;
}

const dispose = (m: Model): void => Object.values(m.params).forEach((p) => p.dispose());

/** log π(tokens[j] | prompt, tokens[..j]) of one row, from a TF.js pass over prompt · tokens on the WASM kernels (no addon). */
function teacherForced(m: Model, prompt: number[], tokens: number[]): Float32Array {
  const seq = [...prompt, ...tokens];
  const T = seq.length;
  const ids = Int32Array.from(seq);
  const targets = Int32Array.from({ length: T }, (_, t) => (t + 1 < T ? seq[t + 1] : 0));
  const previous = useNativeKernels(false);
  try {
    const logp = tf.tidy(() => tf.neg(tokenNll(lmLogits(m, forwardHidden(m, { ids, batch: 1, seq: T })), tf.tensor1d(targets, 'int32'))).dataSync() as Float32Array);
    return logp.slice(prompt.length - 1, T - 1);
  } finally {
    useNativeKernels(previous);
  }
}

/** Samples from `policy` with the scorer fed by `onStep`, as ppoRound does; the samples and the scorer's result. */
async function sampleAndScore(
  policy: Model,
  reference: Model,
  prompts: number[][],
  options: { n: number; maxTokens: number; eos?: number; stop?: number[][]; seed: number; chunk: number },
): Promise<{ samples: Sample[]; scored: Float32Array[]; steps: number }> {
  const rowPrompts = prompts.flatMap((_, i) => Array.from({ length: options.n }, () => i));
  const scorer = StreamingScorer.open(reference, prompts, rowPrompts, options.maxTokens, { chunk: options.chunk });
  if (!scorer) throw new Error('no streaming scorer');
  let steps = 0;
  const samples = await generateAsync(policy, prompts, {
    n: options.n,
    temperature: 1,
    maxTokens: options.maxTokens,
    eos: options.eos,
    stop: options.stop,
    seed: options.seed,
    onStep: (step: GenerationStep) => {
      steps += 1;
      scorer.push(step);
    },
  });
  return { samples, scored: await scorer.finish(), steps };
}

describe('StreamingScorer: the reference pass while the policy samples', () => {
  const configs: ModelConfigInput[] = [
    { vocabSize: 12, contextLength: 24, layers: 2, width: 16, heads: 2 },
    { vocabSize: 12, contextLength: 24, layers: 2, width: 16, heads: 4, positions: 'learned' },
  ];
  // Prompts of 1 to 7 tokens; an end token and a stop sequence, so rows end at different steps and some tokens are held back.
  const prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9, 10, 11], [3, 5]];

  configs.forEach((config, i) => {
    it(`equals a teacher-forced pass over each prompt and response, whatever the chunk (${config.positions ?? 'rotary'})`, async (ctx) => {
      if (!streamingAvailable()) return ctx.skip();
      const policy = moved(config, 21 + i);
      const reference = moved(config, 31 + i);
      const options = { n: 3, maxTokens: 10, eos: 0, stop: [[2, 2]], seed: 5 };
      const byChunk: Float32Array[][] = [];
      for (const chunk of [1, 3, 4, 50]) {
        const { samples, scored, steps } = await sampleAndScore(policy, reference, prompts, { ...options, chunk });
        expect(steps).toBeGreaterThan(1);
        expect(scored.map((x) => x.length)).toEqual(samples.map((s) => s.tokens.length));
        samples.forEach((s, b) => {
          const want = teacherForced(reference, prompts[s.prompt], s.tokens);
          for (let j = 0; j < want.length; j++) expect(Math.abs(scored[b][j] - want[j]), `chunk ${chunk} row ${b} token ${j}`).toBeLessThan(1e-4);
        });
        byChunk.push(scored);
        // Rows that ended early (end token or stop sequence) and rows that ran to the limit, and some empty.
        const lengths = new Set(samples.map((s) => s.tokens.length));
        expect(lengths.size).toBeGreaterThan(3);
      }
      // The scored tokens are the policy's samples, not the reference's own: its numbers differ from the policy's.
      const { samples, scored } = await sampleAndScore(policy, reference, prompts, { ...options, chunk: 4 });
      const row = samples.findIndex((s) => s.tokens.length > 2);
      const underPolicy = teacherForced(policy, prompts[samples[row].prompt], samples[row].tokens);
      expect(Math.max(...underPolicy.map((x, j) => Math.abs(x - scored[row][j])))).toBeGreaterThan(1e-2);
      // The same run twice gives the same bits; another chunk the same numbers to rounding.
      expect(scored).toEqual(byChunk[2]);
      byChunk.forEach((run) => run.forEach((x, b) => x.forEach((v, j) => expect(Math.abs(v - byChunk[0][b][j])).toBeLessThan(1e-5))));
      dispose(policy);
      dispose(reference);
    });
  });

  it('keeps its own copy of the weights: a model changed after open is scored as it was', async (ctx) => {
    if (!streamingAvailable()) return ctx.skip();
    const config = configs[0];
    const reference = moved(config, 41);
    const before = moved(config, 41);
    const scorer = StreamingScorer.open(reference, [[1, 2]], [0], 3)!;
    for (const p of Object.values(reference.params)) p.assign(tf.zerosLike(p));
    scorer.push({ tokens: [[3, 4, 5]], finished: ['length'] });
    const [got] = await scorer.finish();
    const want = teacherForced(before, [1, 2], [3, 4, 5]);
    want.forEach((x, j) => expect(Math.abs(got[j] - x)).toBeLessThan(1e-4));
    dispose(reference);
    dispose(before);
  });

  it('refuses what it cannot score, naming the row or the limit', (ctx) => {
    if (!streamingAvailable()) return ctx.skip();
    const m = moved(configs[0], 51);
    expect(() => StreamingScorer.open(m, [[]], [0], 2)).toThrow(/prompt 0 is empty/);
    expect(() => StreamingScorer.open(m, [[1]], [0, 3], 2)).toThrow(/row 1 names prompt 3 of 1/);
    expect(() => StreamingScorer.open(m, [[1]], [], 2)).toThrow(/no rows/);
    // 7 prompt tokens + 19 response tokens: the last input at position 24, past the context of 24 (with 18, at 23).
    expect(() => StreamingScorer.open(m, [prompts[2]], [0], 19)).toThrow(/exceed the context of 24/);
    StreamingScorer.open(m, [prompts[2]], [0], 18)!.abandon();
    expect(() => StreamingScorer.open(m, [[1]], [0], 2, { chunk: 0 })).toThrow(/chunk must be a positive integer/);
    const scorer = StreamingScorer.open(m, [[1]], [0, 0], 2)!;
    expect(() => scorer.push({ tokens: [[1]], finished: [null] })).toThrow(/a step of 1 rows for 2/);
    expect(() => scorer.push({ tokens: [[1, 2, 3], []], finished: [null, null] })).toThrow(/row 0 passes its 2 tokens/);
    scorer.abandon();
    expect(() => scorer.push({ tokens: [[1], [1]], finished: [null, null] })).toThrow(/push after finish/);
    dispose(m);
  });

  it('an abandoned scorer leaves nothing behind: the next one, on the reused buffers, is exact', async (ctx) => {
    if (!streamingAvailable()) return ctx.skip();
    const policy = moved(configs[0], 61);
    const reference = moved(configs[0], 62);
    const first = StreamingScorer.open(reference, prompts, [0, 1, 2, 3], 8, { chunk: 1 })!;
    first.push({ tokens: [[1], [2], [3], [4]], finished: [null, null, null, null] });
    first.push({ tokens: [[5], [6], [7], [8]], finished: [null, null, null, null] });
    first.abandon();
    const { samples, scored } = await sampleAndScore(policy, reference, prompts, { n: 2, maxTokens: 8, eos: 0, seed: 9, chunk: 2 });
    samples.forEach((s, b) => {
      const want = teacherForced(reference, prompts[s.prompt], s.tokens);
      want.forEach((x, j) => expect(Math.abs(scored[b][j] - x)).toBeLessThan(1e-4));
    });
    // The sampler's tokens are those of a run without the scorer (the callback only reads).
    const plain = generate(policy, prompts, { n: 2, temperature: 1, maxTokens: 8, eos: 0, seed: 9 });
    expect(samples.map((s) => s.tokens)).toEqual(plain.map((s) => s.tokens));
    dispose(policy);
    dispose(reference);
  });
});

describe('decodeScoreAsync', () => {
  it("checks its arguments at the call, as decodeScore does, and writes decodeScore's numbers once it resolves", async (ctx) => {
    const blas = nativeBlas();
    if (typeof blas?.decodeScoreAsync !== 'function' || typeof blas.decodeScore !== 'function') return ctx.skip();
    // layers 1, B 2, T 3, past 0, S 3, D 8, H 2, F 32, V 11, P 8, rotary; weights laid out one after another in the heap.
    const [layers, B, T, S, D, F, V, P] = [1, 2, 3, 3, 8, 32, 11, 8];
    const M = B * T;
    const sizes = [V * D, 0, D, D * V, D, D * D, D * D, D * D, D * D, D, D * F, F * D];
    const offsets: number[] = [];
    let at = 0;
    for (const n of sizes) {
      offsets.push(at);
      at += n;
    }
    const heap = Float32Array.from({ length: at }, (_, i) => Math.sin(i * 0.37) * 0.5 + (i % 7 === 0 ? 1 : 0));
    const rope = new Float32Array(2 * P * (D / 2 / 2));
    for (let p = 0; p < P; p++) for (let j = 0; j < D / 4; j++) [rope[p * (D / 4) + j], rope[(P + p) * (D / 4) + j]] = [Math.cos(p / (j + 1)), Math.sin(p / (j + 1))];
    const args = () => ({
      heap,
      weights: Float64Array.from(offsets),
      k: new Float32Array(layers * B * S * D),
      v: new Float32Array(layers * B * S * D),
      scratch: new Float32Array(M * (5 * D + F) + 16 * S + 16 * (128 * V + T * S)),
      ids: Int32Array.of(1, 2, 3, 4, 5, 6),
      positions: Int32Array.of(0, 1, 2, 0, 1, 2),
      starts: new Int32Array(B),
      rope,
      targets: Int32Array.of(2, 3, 4, 5, 6, -1),
      logp: new Float32Array(M),
      dims: Float64Array.of(layers, B, T, 0, S, D, 2, F, V, 1e-5, P, 0),
    });
    type Args = ReturnType<typeof args>;
    const call = (a: Args) => [a.heap, a.weights, a.k, a.v, a.scratch, a.ids, a.positions, a.starts, a.rope, a.targets, a.logp, a.dims] as const;
    const sync = args();
    blas.decodeScore(...call(sync));
    const async = args();
    const pending = blas.decodeScoreAsync(...call(async));
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(Array.from(async.logp).every(Number.isFinite)).toBe(true);
    expect(async.logp[5]).toBe(0);
    async.logp.forEach((x, i) => expect(Math.abs(x - sync.logp[i])).toBeLessThan(1e-5));
    expect(new Set(Array.from(sync.logp.subarray(0, 5), (x) => x.toFixed(4))).size).toBe(5);
    // Bad arguments throw at the call, before anything is queued.
    expect(() => blas.decodeScoreAsync!(...call({ ...args(), targets: new Int32Array(M - 1) }))).toThrow(/targets is too short/);
    expect(() => blas.decodeScoreAsync!(...call({ ...args(), dims: Float64Array.of(layers, B, T, 1, S, D, 2, F, V, 1e-5, P, 0) }))).toThrow(/past \+ T <= S/);
    expect(() => blas.decodeScoreAsync!(...call({ ...args(), ids: Int32Array.of(0, 11, 0, 0, 0, 0) }))).toThrow(/ids has an index outside/);
    expect(() => (blas.decodeScoreAsync as unknown as (...a: unknown[]) => unknown)(heap)).toThrow(/decodeScoreAsync takes 12 arguments/);
  });
});
