import * as tf from '@tensorflow/tfjs-core';
import { SplitMix32, type Rng } from '@xyp/random';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { generate, generateAsync, sampleToken, sampleTokens, SamplerScratch, useFusedDecoding, type GenerationStep, type Sample } from './generate';
import { forwardHidden, initParams, lmLogits, valueHead, type KvCache, type Model, type ModelConfigInput } from './model';
import { nativeBlas, nativeDecoder, useNativeKernels } from './native';

beforeAll(async () => {
  await initBackend();
});

const model = () => initParams({ vocabSize: 12, contextLength: 24, layers: 2, width: 16, heads: 2 }, 5);

describe('generation', () => {
  it('decoding with the KV cache gives the logits of a full forward pass', () => {
    const m = model();
    const ids = Int32Array.from([3, 1, 4, 1, 5, 9]);
    const full = tf.tidy(() => lmLogits(m, forwardHidden(m, { ids, batch: 1, seq: 6 })).dataSync());
    const cache: KvCache = { k: [], v: [], length: 0 };
    tf.tidy(() => forwardHidden(m, { ids: ids.slice(0, 5), batch: 1, seq: 5, cache }));
    const last = tf.tidy(() => lmLogits(m, forwardHidden(m, { ids: ids.slice(5), batch: 1, seq: 1, cache })).dataSync());
    for (let v = 0; v < 12; v++) expect(last[v]).toBeCloseTo(full[5 * 12 + v], 4);
    for (const t of [...cache.k, ...cache.v]) t.dispose();
  });

  it('samples n completions per prompt reproducibly from a seed, within max tokens', () => {
    const m = model();
    const prompts = [[1, 2, 3], [4]];
    const a = generate(m, prompts, { n: 3, maxTokens: 5, temperature: 0.9, topP: 0.9, seed: 7 });
    const b = generate(m, prompts, { n: 3, maxTokens: 5, temperature: 0.9, topP: 0.9, seed: 7 });
    expect(a).toEqual(b);
    expect(a.map((s) => s.prompt)).toEqual([0, 0, 0, 1, 1, 1]);
    for (const s of a) expect(s.tokens.length).toBeLessThanOrEqual(5);
    const c = generate(m, prompts, { n: 3, maxTokens: 5, temperature: 0.9, topP: 0.9, seed: 8 });
    expect(c).not.toEqual(a);
  });

  it('left-padded batched prompts decode like the same prompt alone (greedy)', () => {
    const m = model();
    const alone = generate(m, [[4]], { maxTokens: 6, temperature: 0 });
    const batched = generate(m, [[1, 2, 3, 5, 6], [4]], { maxTokens: 6, temperature: 0 });
    expect(batched[1].tokens).toEqual(alone[0].tokens);
  });

  it('ends a sample at a stop sequence or the end token', () => {
    const m = model();
    const free = generate(m, [[1]], { maxTokens: 8, temperature: 0 })[0].tokens;
    const stop = free.slice(2, 4);
    const stopped = generate(m, [[1]], { maxTokens: 8, temperature: 0, stop: [stop] })[0];
    const at = free.findIndex((_, i) => i + 1 < free.length && free[i] === stop[0] && free[i + 1] === stop[1]);
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.tokens).toEqual(free.slice(0, at));
    const eos = generate(m, [[1]], { maxTokens: 8, temperature: 0, eos: free[1] })[0];
    expect(eos).toEqual({ prompt: 0, tokens: free.slice(0, free.indexOf(free[1])), finishReason: 'stop' });
  });

  it('top-p keeps only the nucleus and temperature 0 is greedy', () => {
    const logits = Float32Array.from([0, Math.log(6), Math.log(3), Math.log(1)]);
    const rng = new SplitMix32(1);
    const seen = new Set(Array.from({ length: 200 }, () => sampleToken(logits, 1, 0.8, rng)));
    expect([...seen].sort()).toEqual([1, 2]);
    expect(sampleToken(logits, 0, 1, rng)).toBe(1);
  });

  it('reports every step to onStep, holding back a token that may start a stop sequence, and samples as without it', () => {
    const m = model();
    const free = generate(m, [[1]], { maxTokens: 8, temperature: 0 })[0].tokens;
    // A stop sequence that starts with a generated token but never completes: that token is held
    // back when sampled and reported with a later one.
    const absent = Array.from({ length: 12 }, (_, t) => t).find((t) => !free.includes(t)) as number;
    const options = { n: 3, maxTokens: 8, temperature: 0.9, seed: 11, stop: [[free[2], absent]], eos: 0 };
    const steps: GenerationStep[] = [];
    const samples = generate(m, [[1], [2, 3]], { ...options, onStep: (s) => steps.push(s) });
    expect(samples).toEqual(generate(m, [[1], [2, 3]], options));
    expect(steps.map((s) => s.step)).toEqual(steps.map((_, i) => i));
    const last = steps[steps.length - 1];
    samples.forEach((sample, b) => {
      expect(steps.flatMap((s) => s.tokens[b])).toEqual(sample.tokens);
      expect(last.finished[b]).toBe(sample.finishReason);
      const endedAt = steps.findIndex((s) => s.finished[b] !== null);
      for (const s of steps.slice(endedAt + 1)) expect(s.tokens[b]).toEqual([]);
    });

    const greedy: GenerationStep[] = [];
    const held = generate(m, [[1]], { maxTokens: 8, temperature: 0, stop: [[free[2], absent]], onStep: (s) => greedy.push(s) })[0];
    expect(held.tokens).toEqual(free);
    const first = free.indexOf(free[2]);
    expect(greedy[first].tokens[0]).toEqual([]);
    expect(greedy.flatMap((s) => s.tokens[0])).toEqual(free);
  });

  it('generateAsync gives the same samples while the event loop runs between steps, and stops on abort', async () => {
    const m = model();
    const options = { n: 2, maxTokens: 6, temperature: 0.9, seed: 3 };
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      if (!spinning) return;
      turns += 1;
      setImmediate(spin);
    };
    setImmediate(spin);
    const seen: number[] = [];
    const samples = await generateAsync(m, [[1, 2]], { ...options, onStep: () => seen.push(turns) });
    spinning = false;
    expect(samples).toEqual(generate(m, [[1, 2]], options));
    expect(seen).toHaveLength(6);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);

    const before = tf.memory().numTensors;
    const controller = new AbortController();
    const decoded: number[] = [];
    const aborted = generateAsync(m, [[1, 2]], {
      ...options,
      signal: controller.signal,
      onStep: (s) => {
        decoded.push(s.step);
        if (s.step === 2) controller.abort(new Error('client went away'));
      },
    });
    await expect(aborted).rejects.toThrow('client went away');
    expect(decoded).toEqual([0, 1, 2]);
    const failing = (): never => {
      throw new Error('callback failed');
    };
    expect(() => generate(m, [[1, 2]], { ...options, onStep: failing })).toThrow('callback failed');
    // The KV cache is released however decoding ends.
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** `f` with the native kernels off: TF.js kernels only, and the sampler's own nucleus step. */
function withoutNative<T>(f: () => T): T {
  const previous = useNativeKernels(false);
  try {
    return f();
  } finally {
    useNativeKernels(previous);
  }
}

/** The sampler as it was before the nucleus selection (a comparison sort of the whole vocabulary): the reference. */
function referenceSampleToken(logits: Float32Array, temperature: number, topP: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature <= 0) return best;
  const probs = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    probs[i] = Math.exp((logits[i] - logits[best]) / temperature);
    total += probs[i];
  }
  let order = Array.from(probs.keys());
  if (topP < 1) {
    order.sort((a, b) => probs[b] - probs[a] || a - b);
    let cum = 0;
    let keep = 0;
    while (keep < order.length && cum < topP * total) cum += probs[order[keep++]];
    order = order.slice(0, Math.max(1, keep));
    total = cum;
  }
  let u = rng.nextFloat() * total;
  for (const i of order) {
    u -= probs[i];
    if (u <= 0) return i;
  }
  return order[order.length - 1];
}

/** Logits of many shapes: flat and peaked, ties (coarse values), ±0, a huge gap (exp underflow). */
function logitCases(): Float32Array[] {
  const rng = new SplitMix32(42);
  const normal = (): number => {
    const u = 1 - rng.nextFloat();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
  };
  const cases: Float32Array[] = [];
  for (const V of [1, 2, 7, 300, 4096]) {
    for (const scale of [0.01, 0.3, 3, 30]) {
      cases.push(Float32Array.from({ length: V }, () => normal() * scale));
      cases.push(Float32Array.from({ length: V }, () => Math.round(normal() * 4) / 4));
    }
  }
  cases.push(Float32Array.from([0, -0, 0, -0, 1, 1, -0]));
  cases.push(Float32Array.from({ length: 500 }, (_, i) => (i % 3 === 0 ? -2000 + i : i % 7)));
  cases.push(new Float32Array(64));
  return cases;
}

describe('top-p sampling', () => {
  it('draws exactly the tokens of the reference sampler (full sort), batched or not, natively or not', () => {
    const settings: [number, number][] = [];
    // 1e12: p = exp(tiny) = 1 for distinct logits, a run of equal p that the reference orders by index.
    for (const temperature of [0, 0.05, 1, 2, 1e12]) for (const topP of [0, 0.3, 0.95, 0.999999, 1]) settings.push([temperature, topP]);
    const run = () => {
      let draws = 0;
      for (const logits of logitCases()) {
        const V = logits.length;
        for (const [temperature, topP] of settings) {
          const rows = 3;
          const batch = new Float32Array(rows * V);
          for (let r = 0; r < rows; r++) batch.set(logits.map((z, i) => (r === 1 ? logits[(i + 1) % V] : z)), r * V);
          const reference = new SplitMix32(7);
          const want = Array.from({ length: rows }, (_, r) => referenceSampleToken(batch.subarray(r * V, (r + 1) * V), temperature, topP, reference));
          const got = sampleTokens(batch, rows, temperature, topP, new SplitMix32(7), new SamplerScratch(V, rows));
          expect(Array.from(got)).toEqual(want);
          const single = new SplitMix32(9);
          const singleRef = new SplitMix32(9);
          for (let k = 0; k < 3; k++) expect(sampleToken(logits, temperature, topP, single)).toBe(referenceSampleToken(logits, temperature, topP, singleRef));
          draws += rows + 3;
        }
      }
      return draws;
    };
    expect(run()).toBeGreaterThan(1000);
    if (nativeBlas()) withoutNative(run);
  });

  it('keeps exactly the smallest set of most likely tokens whose mass reaches p, in proportion (brute force)', () => {
    const rng = new SplitMix32(5);
    const V = 40;
    // u sweeps [0, 1) in N equal steps: each kept token is drawn for a share of them equal to its renormalised probability.
    const N = 50_000;
    let k = 0;
    const sweep: Rng = { nextFloat: () => (k++ % N) / N, nextUint32: () => 0, nextInt: () => 0 };
    for (const [scale, temperature, topP] of [
      [1, 1, 0.9],
      [3, 0.8, 0.5],
      [0.2, 1.5, 0.95],
      [2, 1, 0.99],
    ]) {
      const logits = Float32Array.from({ length: V }, () => (rng.nextFloat() - 0.5) * 2 * scale);
      // Brute force: every token's probability, the tokens by probability, the shortest prefix with mass ≥ p.
      const p = Array.from(logits, (z) => Math.exp(z / temperature));
      const total = p.reduce((a, b) => a + b, 0);
      const byMass = p.map((_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
      const kept: number[] = [];
      let mass = 0;
      for (const i of byMass) {
        if (mass >= topP * total) break;
        kept.push(i);
        mass += p[i];
      }
      expect(kept.length).toBeLessThan(V);
      // Any smaller set of tokens holds less than p: the kept set is the smallest.
      expect(mass - p[kept[kept.length - 1]]).toBeLessThan(topP * total);
      const counts = new Map<number, number>();
      k = 0;
      const scratch = new SamplerScratch(V);
      for (let j = 0; j < N; j++) {
        const token = sampleToken(logits, temperature, topP, sweep, scratch);
        counts.set(token, (counts.get(token) ?? 0) + 1);
      }
      expect([...counts.keys()].sort((a, b) => a - b)).toEqual([...kept].sort((a, b) => a - b));
      for (const i of kept) expect(Math.abs((counts.get(i) ?? 0) / N - p[i] / mass)).toBeLessThan(2 / N);
    }
  });
});

/** Full-sequence LM logits `[T, V]` of one row on TF.js kernels alone: the reference forward pass. */
function referenceLogits(m: Model, tokens: number[]): Float32Array {
  return withoutNative(() => tf.tidy(() => lmLogits(m, forwardHidden(m, { ids: Int32Array.from(tokens), batch: 1, seq: tokens.length })).dataSync() as Float32Array));
}

/** A small model with weights 10× the initial scale, so that attention is far from uniform and the logits of order 1. */
function sharpModel(config: ModelConfigInput, seed: number): Model {
  const m = initParams(config, seed);
  for (const [name, p] of Object.entries(m.params)) if (!name.includes('norm')) p.assign(tf.mul(p, 10));
  return m;
}

describe('native decoder', () => {
  const configs: ModelConfigInput[] = [
    { vocabSize: 37, contextLength: 48, layers: 2, width: 16, heads: 2 },
    { vocabSize: 29, contextLength: 20, layers: 3, width: 24, heads: 3, mlpRatio: 2, positions: 'learned' },
  ];
  // Prompt lengths per row: the first set's prefill has more tokens per thread than the thin
  // products take (64), so it runs on sgemm; every other product runs on the thin kernel.
  const promptLengths = [
    [40, 21, 7, 33],
    [5, 3, 1, 4],
  ];

  it('gives the logits of the full-sequence forward pass at every step (left-padded rows, rotary and learned positions)', (ctx) => {
    if (!nativeBlas()) return ctx.skip();
    for (const [c, config] of configs.entries()) {
      const m = sharpModel(config, 11 + c);
      const V = m.config.vocabSize;
      const rng = new SplitMix32(c);
      const lengths = promptLengths[c];
      const full = lengths.map((n) => Array.from({ length: n + 6 }, () => rng.nextInt(V)));
      const L = Math.max(...lengths);
      const ids = new Int32Array(full.length * L);
      const positions = new Int32Array(full.length * L);
      full.forEach((row, b) => {
        const pad = L - lengths[b];
        for (let t = 0; t < L; t++) {
          ids[b * L + t] = t < pad ? 0 : row[t - pad];
          positions[b * L + t] = Math.max(0, t - pad);
        }
      });
      const decoder = nativeDecoder(m, full.length, L + 6, Int32Array.from(lengths, (n) => L - n));
      expect(decoder).toBeDefined();
      let logits = decoder!.forward(ids, positions, L);
      for (let step = 0; step <= 6; step++) {
        full.forEach((row, b) => {
          const n = lengths[b] + step;
          const want = referenceLogits(m, row.slice(0, n)).subarray((n - 1) * V, n * V);
          const scale = Math.max(...Array.from(want, Math.abs));
          for (let v = 0; v < V; v++) expect(Math.abs(logits[b * V + v] - want[v])).toBeLessThan(1e-5 * scale);
        });
        if (step === 6) break;
        const next = Int32Array.from(full, (row, b) => row[lengths[b] + step]);
        logits = decoder!.forward(next, Int32Array.from(lengths, (n) => n + step), 1);
      }
      expect(() => decoder!.forward(new Int32Array(full.length), new Int32Array(full.length), 1)).toThrow(/exceed/);
    }
  });

  it('samples what the TF.js path samples, and generation still works without the addon', () => {
    const m = sharpModel(configs[0], 3);
    const prompts = [[1, 2, 3, 4, 5], [6], [7, 8]];
    const greedy = { n: 2, maxTokens: 8, temperature: 0 };
    const seeded = { n: 2, maxTokens: 8, temperature: 0.8, topP: 0.9, seed: 21 };
    const fused = [generate(m, prompts, greedy), generate(m, prompts, seeded)];
    const previous = useFusedDecoding(false);
    try {
      expect([generate(m, prompts, greedy), generate(m, prompts, seeded)]).toEqual(fused);
    } finally {
      useFusedDecoding(previous);
    }
    expect(withoutNative(() => [generate(m, prompts, greedy), generate(m, prompts, seeded)])).toEqual(fused);
    expect(generate(m, prompts, seeded)).toEqual(fused[1]);
  });
});

describe('log-probabilities and values from the sampler', () => {
  const config: ModelConfigInput = { vocabSize: 37, contextLength: 48, layers: 2, width: 16, heads: 2, valueHead: true };
  const prompts = [[1, 2, 3, 4, 5, 6, 7], [8], [9, 10, 11]];

  /** Teacher-forced on TF.js kernels, one sequence at a time: log softmax of token j given its prefix, and the value of that prefix's last state. */
  function teacherForced(m: Model, prompt: number[], tokens: number[]): { logp: number[]; values: number[] } {
    return withoutNative(() =>
      tf.tidy(() => {
        const seq = [...prompt, ...tokens];
        const hidden = forwardHidden(m, { ids: Int32Array.from(seq), batch: 1, seq: seq.length });
        const logp = tf.logSoftmax(lmLogits(m, hidden), 1).arraySync() as number[][];
        const values = valueHead(m, hidden).arraySync() as number[];
        return { logp: tokens.map((t, j) => logp[prompt.length - 1 + j][t]), values: tokens.map((_, j) => values[prompt.length - 1 + j]) };
      }),
    );
  }

  function expectClose(got: number[] | undefined, want: number[]): void {
    expect(got).toHaveLength(want.length);
    got!.forEach((g, j) => expect(Math.abs(g - want[j])).toBeLessThan(2e-4));
  }

  function check(samples: Sample[], m: Model): void {
    for (const s of samples) {
      const want = teacherForced(m, prompts[s.prompt], s.tokens);
      expectClose(s.logprobs, want.logp);
      expectClose(s.values, want.values);
    }
  }

  it('match a teacher-forced pass over the samples, at temperature 1 and not, on the native decoder and on TF.js, and leave the tokens as they were', () => {
    const m = sharpModel(config, 31);
    for (const temperature of [1, 0.7]) {
      const options = { n: 2, maxTokens: 9, temperature, topP: 0.95, seed: 4, stop: [[5, 6]] };
      const plain = generate(m, prompts, options);
      const fused = generate(m, prompts, { ...options, logprobs: true, values: true });
      expect(fused.map((s) => [s.tokens, s.finishReason])).toEqual(plain.map((s) => [s.tokens, s.finishReason]));
      check(fused, m);
      const previous = useFusedDecoding(false);
      try {
        const tfjs = generate(m, prompts, { ...options, logprobs: true, values: true });
        expect(tfjs.map((s) => s.tokens)).toEqual(plain.map((s) => s.tokens));
        check(tfjs, m);
      } finally {
        useFusedDecoding(previous);
      }
    }
  });

  it('refuses values without a value head', () => {
    const m = sharpModel({ ...config, valueHead: false }, 1);
    expect(() => generate(m, prompts, { maxTokens: 2, values: true })).toThrow(/no value head/);
  });
});
