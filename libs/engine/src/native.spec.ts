import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { forwardHidden, initParams, lmLogits, valueHead, type Model, type ModelConfigInput } from './model';
import { loadNativeBlas, nativeBlas, nativeDecoder, nativeScore, nativeScoreSharedPrompts, useNativeKernels } from './native';
import { attention, gatherRows, gelu, rmsNorm, rotary, tokenNll } from './ops';
import { AdamW } from './optim';
import { lmLoss, type TokenBatch } from './train';

beforeAll(async () => {
  await initBackend();
});

function close(a: tf.Tensor, b: tf.Tensor, tol = 1e-4): void {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  for (let i = 0; i < x.length; i++) expect(Math.abs(x[i] - y[i])).toBeLessThan(tol * (1 + Math.abs(y[i])));
}

/** `f` with the native kernels switched off: the WASM reference. */
function onWasm<T>(f: () => T): T {
  const previous = useNativeKernels(false);
  try {
    return f();
  } finally {
    useNativeKernels(previous);
  }
}

const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

describe('native addon loading', () => {
  it('reports a missing addon instead of throwing', () => {
    const { blas, note } = loadNativeBlas('/nonexistent/xyp_blas.node');
    expect(blas).toBeUndefined();
    expect(note).toMatch(/not built/);
  });
});

// These compare the native kernels with the WASM path in one process; without the addon there is nothing to compare.
describe('native kernels against the WASM path', () => {
  it('BatchMatMul: transposed, batched and broadcast products', (ctx) => {
    if (!nativeBlas()) return ctx.skip();
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 3], [3, 4], false, false],
      [[3, 5], [3, 4], true, false],
      [[5, 3], [4, 3], false, true],
      [[3, 5], [4, 3], true, true],
      [[2, 3, 5, 3], [2, 3, 3, 4], false, false],
      [[2, 5, 3], [1, 4, 3], false, true],
      [[1, 3, 5], [6, 3, 4], true, false],
      [[1, 1, 1, 5, 3], [3, 3, 4], false, false],
      [[2, 1, 5, 3], [1, 3, 3, 4], false, false],
    ];
    cases.forEach(([sa, sb, ta, tb], i) => {
      const a = rand(sa, 10 + i);
      const b = rand(sb, 20 + i);
      close(tf.matMul(a, b, ta, tb), onWasm(() => tf.matMul(a, b, ta, tb)));
    });
  });

  it('tokenNll, rmsNorm, gelu and gatherRows: values and gradients', (ctx) => {
    if (!nativeBlas()) return ctx.skip();
    const z = rand([6, 9], 1) as tf.Tensor2D;
    const t = tf.tensor1d([0, 8, 3, 3, 5, 1], 'int32');
    const w = tf.range(1, 7);
    const nll = (x: tf.Tensor) => tf.sum(tf.mul(tokenNll(x as tf.Tensor2D, t), w));
    close(tf.grad(nll)(z), onWasm(() => tf.grad(nll)(z)));
    close(tokenNll(z, t), onWasm(() => tokenNll(z, t)));

    const x = rand([7, 16], 2) as tf.Tensor2D;
    const g = rand([16], 3);
    const dy = rand([7, 16], 4);
    const norm = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a as tf.Tensor2D, b, 1e-5), dy));
    const [gx, gg] = tf.grads(norm)([x, g]);
    const [rx, rg] = onWasm(() => tf.grads(norm)([x, g]));
    close(gx, rx);
    close(gg, rg);
    close(rmsNorm(x, g, 1e-5), onWasm(() => rmsNorm(x, g, 1e-5)));

    const act = (a: tf.Tensor) => tf.sum(tf.mul(gelu(a as tf.Tensor2D), dy));
    close(tf.grad(act)(x), onWasm(() => tf.grad(act)(x)));
    close(gelu(x), onWasm(() => gelu(x)));

    const table = rand([5, 4], 5) as tf.Tensor2D;
    const idx = tf.tensor1d([4, 0, 4, 2], 'int32');
    const pick = (a: tf.Tensor) => tf.sum(tf.mul(gatherRows(a as tf.Tensor2D, idx), tf.range(0, 16).reshape([4, 4])));
    close(gatherRows(table, idx), onWasm(() => gatherRows(table, idx)));
    close(tf.grad(pick)(table), onWasm(() => tf.grad(pick)(table)));
  });

  it('rotary and attention equal their head-major TF.js formulations, gradients included', (ctx) => {
    if (!nativeBlas()) return ctx.skip();
    const [B, T, H, Dh] = [2, 5, 3, 4];
    const N = B * T;
    const D = H * Dh;
    const angles = rand([N, Dh / 2], 6);
    const cos = tf.cos(angles) as tf.Tensor2D;
    const sin = tf.sin(angles) as tf.Tensor2D;
    const x = rand([N, D], 7) as tf.Tensor2D;
    // y = x·cos + rotate_half(x)·sin per head, cos and sin repeated over both halves.
    const refRotary = (a: tf.Tensor) => {
      const heads = tf.reshape(a, [N, H, Dh]);
      const [x1, x2] = tf.split(heads, 2, 2);
      const c = tf.reshape(tf.concat([cos, cos], 1), [N, 1, Dh]);
      const s = tf.reshape(tf.concat([sin, sin], 1), [N, 1, Dh]);
      return tf.reshape(tf.add(tf.mul(heads, c), tf.mul(tf.concat([tf.neg(x2), x1], 2), s)), [N, D]);
    };
    const dy = rand([N, D], 8);
    close(rotary(x, cos, sin, H), refRotary(x));
    close(
      tf.grad((a) => tf.sum(tf.mul(rotary(a as tf.Tensor2D, cos, sin, H), dy)))(x),
      tf.grad((a) => tf.sum(tf.mul(refRotary(a), dy)))(x),
    );

    // Causal mask inside each row, plus a masked key in row 1.
    const biasValues = new Float32Array(B * T * T);
    for (let b = 0; b < B; b++)
      for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) if (j > i || (b === 1 && j === 0 && i > 0)) biasValues[(b * T + i) * T + j] = -1e9;
    const bias = tf.tensor3d(biasValues, [B, T, T]);
    const toHeads = (a: tf.Tensor) => tf.transpose(tf.reshape(a, [B, T, H, Dh]), [0, 2, 1, 3]);
    const refAttention = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
      const scores = tf.add(tf.mul(tf.matMul(toHeads(q), toHeads(k), false, true), 1 / Math.sqrt(Dh)), tf.reshape(bias, [B, 1, T, T]));
      const mixed = tf.matMul(tf.softmax(scores), toHeads(v));
      return tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [N, D]);
    };
    const q = rand([N, D], 9) as tf.Tensor2D;
    const k = rand([N, D], 10) as tf.Tensor2D;
    const v = rand([N, D], 11) as tf.Tensor2D;
    close(attention(q, k, v, bias, H), onWasm(() => refAttention(q, k, v)));
    const loss = (f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), dy));
    const got = tf.grads(loss((a, b, c) => attention(a as tf.Tensor2D, b as tf.Tensor2D, c as tf.Tensor2D, bias, H)))([q, k, v]);
    const want = onWasm(() => tf.grads(loss(refAttention))([q, k, v]));
    got.forEach((gi, i) => close(gi, want[i], 2e-4));
  });

  it('a training step (fused layers, AdamW) matches the WASM path', (ctx) => {
    if (!nativeBlas()) return ctx.skip();
    const config = { vocabSize: 23, contextLength: 12, layers: 2, width: 16, heads: 2 };
    const n = 2 * 12;
    const batch: TokenBatch = {
      ids: Int32Array.from({ length: n }, (_, i) => (i * 7) % 23),
      targets: Int32Array.from({ length: n }, (_, i) => (i * 5 + 3) % 23),
      weights: Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 1)),
      batch: 2,
      seq: 12,
      segments: Int32Array.from({ length: n }, (_, i) => (i < 16 ? 0 : 1)),
      positions: Int32Array.from({ length: n }, (_, i) => (i < 16 ? i % 12 : i - 16)),
    };
    const step = (model: Model) => {
      const optimizer = new AdamW({ lr: 1e-2, minLr: 1e-3, warmupSteps: 0, totalSteps: 10, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 0.5 }, model.params);
      const vars = Object.values(model.params);
      const { value, grads } = tf.variableGrads(() => lmLoss(model, batch).loss, vars);
      const named = Object.fromEntries(Object.entries(model.params).map(([name, p]) => [name, grads[p.name]]));
      const { gradNorm } = optimizer.apply(named);
      return { loss: value.dataSync()[0], gradNorm, params: Object.fromEntries(Object.entries(model.params).map(([name, p]) => [name, tf.clone(p)])) };
    };
    const native = step(initParams(config, 4));
    const wasm = onWasm(() => step(initParams(config, 4)));
    expect(Math.abs(native.loss - wasm.loss)).toBeLessThan(1e-4 * wasm.loss);
    expect(Math.abs(native.gradNorm - wasm.gradNorm)).toBeLessThan(1e-3 * wasm.gradNorm);
    for (const name of Object.keys(wasm.params)) close(native.params[name], wasm.params[name], 1e-4);
  });
});

describe('native decoder and nucleus: argument checks', () => {
  it('throws instead of reading outside its arrays', (ctx) => {
    const blas = nativeBlas();
    if (!blas) return ctx.skip();
    const m = initParams({ vocabSize: 11, contextLength: 8, layers: 1, width: 8, heads: 2 }, 1);
    const decoder = nativeDecoder(m, 2, 6, new Int32Array(2));
    expect(decoder).toBeDefined();
    // Token 11 is past the vocabulary, position 8 past the context.
    expect(() => decoder!.forward(Int32Array.of(3, 11), Int32Array.of(0, 0), 1)).toThrow(/ids has an index outside/);
    expect(() => decoder!.forward(Int32Array.of(3, 4), Int32Array.of(0, 8), 1)).toThrow(/positions has an index outside/);
    expect(decoder!.forward(Int32Array.of(3, 4), Int32Array.of(0, 0), 1)).toHaveLength(22);
    // The cache holds 6 slots per row.
    expect(() => decoder!.forward(new Int32Array(12), new Int32Array(12), 6)).toThrow(/exceed its 6 slots/);
    expect(() => nativeDecoder(m, 2, 9, new Int32Array(2))).toThrow(/exceed the context/);
    const logits = new Float32Array(2 * 5);
    const probs = new Float64Array(2 * 5);
    expect(() => blas.nucleus(logits, probs, new Float64Array(2), new Int32Array(9), new Int32Array(2), 2, 5)).toThrow(/order is too short/);
    expect(() => blas.nucleus(logits, new Float32Array(10) as unknown as Float64Array, new Float64Array(2), new Int32Array(10), new Int32Array(2), 2, 5)).toThrow(
      /wrong array type/,
    );
    for (const p of Object.values(m.params)) p.dispose();
  });
});

describe('native teacher-forced scoring', () => {
  const maxDiff = (a: Float32Array, b: Float32Array | Int32Array | Uint8Array | ArrayLike<number>) => {
    expect(a.length).toBe(b.length);
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
  };
  // 3 rows of 9 tokens; rows 1 and 2 left-padded by 2 and 5 (masked keys, positions from their first real token).
  const [B, T] = [3, 9];
  const pads = [0, 2, 5];
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % 23);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % 23);
  const positions = Int32Array.from({ length: B * T }, (_, n) => Math.max(0, (n % T) - pads[Math.floor(n / T)]));
  const keyValid = Uint8Array.from({ length: B * T }, (_, n) => (n % T >= pads[Math.floor(n / T)] ? 1 : 0));
  const starts = Int32Array.from(pads);

  /** forwardHidden + lmLogits / tokenNll + valueHead: the TF.js reference. */
  const reference = (m: Model, padded: boolean) =>
    tf.tidy(() => {
      const hidden = forwardHidden(m, { ids, batch: B, seq: T, ...(padded ? { positions, keyValid } : {}) });
      const logp = tf.neg(tokenNll(lmLogits(m, hidden), tf.tensor1d(targets, 'int32'))).dataSync() as Float32Array;
      const values = m.params.value_w ? (valueHead(m, hidden).dataSync() as Float32Array) : undefined;
      return { logp, values };
    });

  const configs: ModelConfigInput[] = [
    { vocabSize: 23, contextLength: 12, layers: 2, width: 16, heads: 2, valueHead: true },
    { vocabSize: 23, contextLength: 12, layers: 1, width: 16, heads: 4, positions: 'learned', valueHead: true },
  ];
  configs.forEach((config, i) => {
    it(`log-probabilities and values equal forwardHidden's, left padding and masks included (${config.positions ?? 'rotary'})`, (ctx) => {
      if (typeof nativeBlas()?.score !== 'function') return ctx.skip();
      const m = initParams(config, 7 + i);
      // Larger weights than the init's, so that the positions, masks and heads matter.
      for (const p of Object.values(m.params)) p.assign(tf.add(p, tf.mul(tf.randomNormal(p.shape, 0, 1, 'float32', 3 + i), 0.3)));
      for (const padded of [false, true]) {
        const got = nativeScore(m, { ids, targets, batch: B, seq: T, ...(padded ? { positions, starts } : {}) }, true);
        expect(got).toBeDefined();
        for (const want of [reference(m, padded), onWasm(() => reference(m, padded))]) {
          expect(maxDiff(got!.logp, want.logp)).toBeLessThan(1e-4);
          expect(maxDiff(got!.values!, want.values!)).toBeLessThan(1e-4);
        }
        // Without values only the log-probabilities.
        const bare = nativeScore(m, { ids, targets, batch: B, seq: T, ...(padded ? { positions, starts } : {}) }, false);
        expect(bare!.values).toBeUndefined();
        expect(maxDiff(bare!.logp, got!.logp)).toBe(0);
      }
      for (const p of Object.values(m.params)) p.dispose();
    });
  });

  it('is undefined without the heads asked for or the native kernels', (ctx) => {
    if (typeof nativeBlas()?.score !== 'function') return ctx.skip();
    const m = initParams({ vocabSize: 23, contextLength: 12, layers: 1, width: 8, heads: 2 }, 1);
    const input = { ids, targets, batch: B, seq: T };
    expect(nativeScore(m, input, true)).toBeUndefined();
    expect(nativeScore(m, input, false)).toBeDefined();
    onWasm(() => expect(nativeScore(m, input, false)).toBeUndefined());
    // (An addon built before `score` lacks the function: `nativeScore` checks for it; the addon's exports are read-only, so it is not simulated here.)
    for (const p of Object.values(m.params)) p.dispose();
  });

  it('throws instead of reading outside its arrays', (ctx) => {
    if (typeof nativeBlas()?.score !== 'function') return ctx.skip();
    const m = initParams({ vocabSize: 23, contextLength: 12, layers: 1, width: 8, heads: 2 }, 1);
    const bad = Int32Array.from(targets);
    bad[4] = 23;
    expect(() => nativeScore(m, { ids, targets: bad, batch: B, seq: T }, false)).toThrow(/targets has an index outside/);
    expect(() => nativeScore(m, { ids, targets, batch: B, seq: T, starts: Int32Array.of(0, 10, 0) }, false)).toThrow(/starts has an index outside/);
    expect(() => nativeScore(m, { ids: ids.subarray(1), targets, batch: B, seq: T }, false)).toThrow(/must hold/);
    for (const p of Object.values(m.params)) p.dispose();
  });
});

describe('native scoring with shared prompts (decodeScore)', () => {
  const configs: ModelConfigInput[] = [
    { vocabSize: 23, contextLength: 16, layers: 2, width: 16, heads: 2 },
    { vocabSize: 23, contextLength: 16, layers: 2, width: 16, heads: 4, positions: 'learned' },
  ];
  // Prompts of 1 to 6 tokens (prompt 4 unused); rows interleaved over the prompts, 1 to 10 response tokens (and one empty).
  const prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15]];
  const lengths = [4, 1, 7, 10, 2, 5, 3, 6, 9, 1, 8, 0, 2, 7, 4, 10, 5, 3, 6, 2, 9, 1, 4, 8];
  const rows = lengths.map((n, b) => ({ prompt: [0, 1, 2, 3][(b * 3) % 4], tokens: Array.from({ length: n }, (_, j) => (b * 5 + j * 7 + 2) % 23) }));

  /** Per row, log π(tokens[j] | prompt, tokens[..j]) from one teacher-forced pass over prompt · response: `nativeScore`, or TF.js kernels. */
  const wholeSequence = (m: Model, onTfjs: boolean) =>
    rows.map((row) => {
      const seq = [...prompts[row.prompt], ...row.tokens];
      const T = seq.length;
      const ids = Int32Array.from(seq);
      const targets = Int32Array.from({ length: T }, (_, t) => (t + 1 < T ? seq[t + 1] : 0));
      const logp = onTfjs
        ? onWasm(() => tf.tidy(() => tf.neg(tokenNll(lmLogits(m, forwardHidden(m, { ids, batch: 1, seq: T })), tf.tensor1d(targets, 'int32'))).dataSync() as Float32Array))
        : nativeScore(m, { ids, targets, batch: 1, seq: T }, false)!.logp;
      return logp.slice(prompts[row.prompt].length - 1, T - 1);
    });

  configs.forEach((config, i) => {
    it(`equals the teacher-forced pass over prompt and response, row by row (${config.positions ?? 'rotary'})`, (ctx) => {
      if (typeof nativeBlas()?.decodeScore !== 'function') return ctx.skip();
      const m = initParams(config, 11 + i);
      for (const p of Object.values(m.params)) p.assign(tf.add(p, tf.mul(tf.randomNormal(p.shape, 0, 1, 'float32', 5 + i), 0.3)));
      const native = wholeSequence(m, false);
      const tfjs = wholeSequence(m, true);
      // On one thread, and on two (rows in two groups, each with its own LM-head scratch).
      const blas = nativeBlas()!;
      const threads = blas.threads();
      let got: Float32Array[] | undefined;
      try {
        for (const t of [1, 2]) {
          blas.setThreads(t);
          got = nativeScoreSharedPrompts(m, prompts, rows);
          expect(got).toBeDefined();
          expect(got!.map((x) => x.length)).toEqual(lengths);
          let maxNative = 0;
          let maxTfjs = 0;
          got!.forEach((logp, b) => {
            for (let j = 0; j < logp.length; j++) {
              maxNative = Math.max(maxNative, Math.abs(logp[j] - native[b][j]));
              maxTfjs = Math.max(maxTfjs, Math.abs(logp[j] - tfjs[b][j]));
            }
          });
          expect(maxNative, `${t} thread(s)`).toBeLessThan(1e-4);
          expect(maxTfjs, `${t} thread(s)`).toBeLessThan(1e-4);
        }
      } finally {
        blas.setThreads(threads);
      }
      // Not trivially equal: the rows of one prompt differ, and so do different prompts' first tokens.
      expect(new Set(got!.map((x) => x[0]?.toFixed(4))).size).toBeGreaterThan(4);
      // One row alone (a prompt cache of one row, no left padding) gives the same numbers.
      const alone = nativeScoreSharedPrompts(m, prompts, [rows[3]])!;
      expect(Math.max(...alone[0].map((x, j) => Math.abs(x - got![3][j])))).toBeLessThan(1e-5);
      // Rows whose responses are all a single token need no cached pass; no rows, nothing.
      const singles = nativeScoreSharedPrompts(m, prompts, [rows[1], rows[9]])!;
      expect(Math.abs(singles[0][0] - got![1][0])).toBeLessThan(1e-5);
      expect(nativeScoreSharedPrompts(m, prompts, [])).toEqual([]);
      for (const p of Object.values(m.params)) p.dispose();
    });
  });

  it('is undefined without the native kernels, and refuses bad rows with a clear error', (ctx) => {
    if (typeof nativeBlas()?.decodeScore !== 'function') return ctx.skip();
    const m = initParams(configs[0], 3);
    onWasm(() => expect(nativeScoreSharedPrompts(m, prompts, rows)).toBeUndefined());
    expect(() => nativeScoreSharedPrompts(m, [[]], [{ prompt: 0, tokens: [1] }])).toThrow(/prompt 0 is empty/);
    expect(() => nativeScoreSharedPrompts(m, prompts, [{ prompt: 7, tokens: [1] }])).toThrow(/row 0 names prompt 7 of 5/);
    expect(() => nativeScoreSharedPrompts(m, prompts, [{ prompt: 0, tokens: [1, 23] }])).toThrow(/row 0 token 1 \(23\) is outside \[0, 23\)/);
    expect(() => nativeScoreSharedPrompts(m, prompts, [{ prompt: 0, tokens: [1, -1] }])).toThrow(/outside/);
    // 6 prompt tokens + 12 response tokens: the last input sits at position 16, past the context (with 11, at 15; the last token is only a target).
    expect(() => nativeScoreSharedPrompts(m, prompts, [{ prompt: 2, tokens: new Array(12).fill(1) }])).toThrow(/exceeds the context of 16/);
    expect(nativeScoreSharedPrompts(m, prompts, [{ prompt: 2, tokens: new Array(11).fill(1) }])![0]).toHaveLength(11);
    for (const p of Object.values(m.params)) p.dispose();
  });

  it('the addon checks decodeScore\'s arguments before touching memory', (ctx) => {
    const blas = nativeBlas();
    if (typeof blas?.decodeScore !== 'function') return ctx.skip();
    // layers 1, B 2, T 3, past 4, S 7, D 8, H 2, F 32, V 11, eps, P 8, rotary.
    const [layers, B, T, past, S, D, F, V, P] = [1, 2, 3, 4, 7, 8, 32, 11, 8];
    const M = B * T;
    const ok = {
      heap: new Float32Array(4096),
      weights: new Float64Array(4 + 8 * layers),
      k: new Float32Array(layers * B * S * D),
      v: new Float32Array(layers * B * S * D),
      scratch: new Float32Array(M * (5 * D + F) + 16 * S + 16 * (128 * V + T * S)),
      ids: new Int32Array(M),
      positions: new Int32Array(M),
      starts: new Int32Array(B),
      rope: new Float32Array(2 * P * (D / 2 / 2)),
      targets: new Int32Array(M),
      logp: new Float32Array(M),
      dims: Float64Array.of(layers, B, T, past, S, D, 2, F, V, 1e-5, P, 0),
    };
    type Args = typeof ok;
    const call = (change: Partial<Args>) => {
      const a = { ...ok, ...change };
      return () => blas!.decodeScore!(a.heap, a.weights, a.k, a.v, a.scratch, a.ids, a.positions, a.starts, a.rope, a.targets, a.logp, a.dims);
    };
    expect(call({ targets: new Int32Array(M - 1) })).toThrow(/targets is too short/);
    expect(call({ logp: new Float32Array(M - 1) })).toThrow(/logp is too short/);
    expect(call({ k: new Float32Array(layers * B * S * D - 1) })).toThrow(/kcache is too short/);
    expect(call({ scratch: new Float32Array(M * (5 * D + F) + 16 * S + 16 * (128 * V + T * S) - 1) })).toThrow(/scratch is too short/);
    expect(call({ targets: new Float32Array(M) as unknown as Args['targets'] })).toThrow(/targets has the wrong array type/);
    expect(call({ dims: Float64Array.of(layers, B, T, 5, S, D, 2, F, V, 1e-5, P, 0) })).toThrow(/past \+ T <= S/);
    expect(call({ dims: new Float64Array(11) })).toThrow(/dims must hold 12 numbers/);
    expect(call({ targets: Int32Array.of(0, 1, -2, 0, 0, 0) })).toThrow(/targets has an index outside \[-1, V\)/);
    expect(call({ ids: Int32Array.of(0, 11, 0, 0, 0, 0) })).toThrow(/ids has an index outside/);
    expect(call({ positions: Int32Array.of(0, 8, 0, 0, 0, 0) })).toThrow(/positions has an index outside/);
    expect(call({ starts: Int32Array.of(0, 8) })).toThrow(/starts has an index outside/);
    const a = ok;
    expect(() => (blas!.decodeScore as unknown as (...args: unknown[]) => void)(a.heap, a.weights, a.k, a.v, a.scratch, a.ids, a.positions, a.starts, a.rope, a.targets, a.dims)).toThrow(
      /decodeScore takes 12 arguments/,
    );
    // A weight outside the heap (the last check before it computes).
    expect(call({ weights: new Float64Array(4 + 8 * layers).fill(4096) })).toThrow(/out of bounds for the heap/);
  });
});
