import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { forwardHidden, initParams, lmLogits, valueHead, type Model, type ModelConfigInput } from './model';
import { loadNativeBlas, nativeBlas, nativeDecoder, nativeScore, useNativeKernels } from './native';
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
