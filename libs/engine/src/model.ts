/**
 * Decoder-only transformer (pre-norm, RMSNorm, rotary or learned positions, GELU MLP) with an optional
 * LM head and an optional scalar value head. A reward model is the same trunk with the value head only.
 *
 * Shapes: batch B, sequence T (keys Tk with a KV cache), width D, heads H, head width Dh = D / H,
 * vocabulary V, tokens N = B·T.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { attention, bmm, customGrad1, gatherRows, gelu, linear, nativeKernels, rmsNorm, rotary } from './ops';
import { angleTable } from './rotary-angles';
import { SplitMix32, nextNormal, nextSeed } from '@xyp/random';
import { alea } from 'seedrandom';

export const ModelConfig = z.object({
  vocabSize: z.number().int().positive(),
  contextLength: z.number().int().positive(),
  layers: z.number().int().positive(),
  width: z.number().int().positive(),
  heads: z.number().int().positive(),
  mlpRatio: z.number().int().positive().default(4),
  positions: z.enum(['rotary', 'learned']).default('rotary'),
  /** Dropout on the embeddings and on each residual branch, only when a forward pass gets a seed. */
  dropout: z.number().min(0).max(0.9).default(0),
  lmHead: z.boolean().default(true),
  valueHead: z.boolean().default(false),
  /**
   * How a reward model reads one sequence's representation h for its value head: the final hidden
   * state of the last token (`last`, as TRL's and OpenRLHF's reward models), or the mean of the
   * final hidden states of all its tokens (`mean`, as sentence encoders pool). PPO's per-token values
   * are unaffected.
   */
  pooling: z.enum(['last', 'mean']).default('last'),
  normEps: z.number().positive().default(1e-5),
  ropeBase: z.number().positive().default(10000),
});
export type ModelConfig = z.output<typeof ModelConfig>;
export type ModelConfigInput = z.input<typeof ModelConfig>;

export type Params = Record<string, tf.Variable>;

let modelCounter = 0;
/** TF.js variable names are global to the process; each model's get a unique prefix. */
function variablePrefix(): string {
  modelCounter += 1;
  return `m${modelCounter}/`;
}

export interface Model {
  config: ModelConfig;
  params: Params;
}

/** Parameter names and shapes in a fixed order (the order of checkpoints and optimiser state). */
export function paramShapes(config: ModelConfig): [string, number[]][] {
  const { vocabSize: V, width: D, mlpRatio, layers, contextLength } = config;
  const shapes: [string, number[]][] = [['tok_emb', [V, D]]];
  if (config.positions === 'learned') shapes.push(['pos_emb', [contextLength, D]]);
  for (let l = 0; l < layers; l++) {
    const p = `layers.${l}.`;
    shapes.push(
      [`${p}norm1`, [D]],
      [`${p}wq`, [D, D]],
      [`${p}wk`, [D, D]],
      [`${p}wv`, [D, D]],
      [`${p}wo`, [D, D]],
      [`${p}norm2`, [D]],
      [`${p}w1`, [D, mlpRatio * D]],
      [`${p}w2`, [mlpRatio * D, D]],
    );
  }
  shapes.push(['norm_f', [D]]);
  if (config.lmHead) shapes.push(['lm_head', [D, V]]);
  if (config.valueHead) shapes.push(['value_w', [D, 1]], ['value_b', [1]]);
  return shapes;
}

export function countParams(config: ModelConfig): { total: number; matmul: number } {
  let total = 0;
  let embedding = 0;
  for (const [name, shape] of paramShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    total += size;
    if (name === 'tok_emb' || name === 'pos_emb') embedding += size;
  }
  return { total, matmul: total - embedding };
}

/**
 * Initial weights, all from `seed`: matrices ~ N(0, 0.02²), the residual output projections (wo, w2)
 * scaled by 1/√(2·layers), norm gains 1, value head bias 0.
 */
export function initParams(configInput: ModelConfigInput, seed: number): Model {
  const config = ModelConfig.parse(configInput);
  if (config.width % config.heads !== 0) throw new Error('width must be a multiple of heads');
  if ((config.width / config.heads) % 2 !== 0) throw new Error('head width must be even (rotary pairs)');
  const rng = new SplitMix32(seed);
  const params: Params = {};
  const prefix = variablePrefix();
  for (const [name, shape] of paramShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (/norm/.test(name)) values.fill(1);
    else if (name !== 'value_b') {
      const std = /\.(wo|w2)$/.test(name) ? 0.02 / Math.sqrt(2 * config.layers) : 0.02;
      for (let i = 0; i < size; i++) values[i] = nextNormal(rng) * std;
    }
    // The variable takes the tensor's buffer; disposing the tensor leaves the variable its sole owner,
    // so that the optimiser may update it in place (`nativeAdamWInPlace`).
    const initial = tf.tensor(values, shape);
    params[name] = tf.variable(initial, true, prefix + name);
    initial.dispose();
  }
  return { config, params };
}

/** A model from given weights (checkpoint loading). */
export function modelFromWeights(configInput: ModelConfigInput, weights: Record<string, tf.Tensor>, trainable = true): Model {
  const config = ModelConfig.parse(configInput);
  const prefix = variablePrefix();
  const params: Params = {};
  for (const [name, shape] of paramShapes(config)) {
    const w = weights[name];
    if (!w) throw new Error(`checkpoint lacks ${name}`);
    if (w.shape.join(',') !== shape.join(',')) throw new Error(`${name}: shape ${w.shape} is not ${shape}`);
    params[name] = tf.variable(w, trainable, prefix + name);
  }
  return { config, params };
}

export function disposeModel(model: Model): void {
  for (const v of Object.values(model.params)) v.dispose();
}

/** A frozen copy (PPO reference policy). */
export function cloneModel(model: Model, trainable = false): Model {
  const params: Params = {};
  const prefix = variablePrefix();
  for (const [name, v] of Object.entries(model.params)) {
    // The copy shares v's buffer (copy on write: neither is updated in place while both hold it).
    const copy = tf.clone(v);
    params[name] = tf.variable(copy, trainable, prefix + name);
    copy.dispose();
  }
  return { config: model.config, params };
}

/** Keys and values of earlier positions, per layer: `[B·H, Tpast, Dh]`. */
export interface KvCache {
  k: tf.Tensor3D[];
  v: tf.Tensor3D[];
  length: number;
}

export interface ForwardInput {
  /** Token ids `[B·T]`. */
  ids: Int32Array;
  batch: number;
  seq: number;
  /** Position of every token `[B·T]` (rotary angle or learned row); default 0..T-1 in each row. */
  positions?: Int32Array;
  /** Document id of every token `[B·T]`: attention never crosses documents (packed CPT rows). */
  segments?: Int32Array;
  /** Keys that may be attended, `[B·(Tpast + T)]` (1) or not (0, left padding). Default: all. */
  keyValid?: Uint8Array;
  /** Seeds the dropout masks; without it dropout is off. */
  dropoutSeed?: number;
  /** Decoding: earlier keys and values; the new ones are appended to it in place. */
  cache?: KvCache;
}

const NEG = -1e9;

/**
 * Additive attention bias `[B, 1, T, Tk]`: 0 where query i may see key j, −1e9 elsewhere. The
 * causal part (keys after the query) is filled a row at a time; only the keys a query could see are
 * checked against `keyValid` and `segments`.
 */
function attentionBias(input: ForwardInput, past: number): tf.Tensor4D {
  const { batch: B, seq: T, segments, keyValid } = input;
  const Tk = past + T;
  const bias = new Float32Array(B * T * Tk);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const row = (b * T + i) * Tk;
      const last = past + i;
      bias.fill(NEG, row + last + 1, row + Tk);
      if (!keyValid && !segments) continue;
      for (let j = 0; j <= last; j++) {
        let ok = true;
        if (keyValid) ok = keyValid[b * Tk + j] === 1;
        if (ok && segments && j >= past) ok = segments[b * T + (j - past)] === segments[b * T + i];
        if (!ok) bias[row + j] = NEG;
      }
    }
  }
  return tf.tensor4d(bias, [B, 1, T, Tk]);
}

function maxPosition(positions: Int32Array): number {
  let max = 0;
  for (let n = 0; n < positions.length; n++) {
    if (positions[n] < 0) throw new Error(`position ${positions[n]} (token ${n}) is negative`);
    if (positions[n] > max) max = positions[n];
  }
  return max;
}

/** Rotary tables `[B, 1, T, Dh]`: cos(p·θ_i) and sin(p·θ_i) with θ_i = base^(−2i/Dh), i < Dh/2, repeated for both halves. */
function rotaryTables(positions: Int32Array, B: number, T: number, Dh: number, base: number): [tf.Tensor4D, tf.Tensor4D] {
  const half = Dh / 2;
  const table = angleTable(Dh, base, maxPosition(positions) + 1);
  const cos = new Float32Array(B * T * Dh);
  const sin = new Float32Array(B * T * Dh);
  for (let n = 0; n < B * T; n++) {
    const row = table.cos.subarray(positions[n] * half, (positions[n] + 1) * half);
    const srow = table.sin.subarray(positions[n] * half, (positions[n] + 1) * half);
    cos.set(row, n * Dh);
    cos.set(row, n * Dh + half);
    sin.set(srow, n * Dh);
    sin.set(srow, n * Dh + half);
  }
  return [tf.tensor4d(cos, [B, 1, T, Dh]), tf.tensor4d(sin, [B, 1, T, Dh])];
}

/**
 * `rotate_half(x) = x·R = [−x₂, x₁]`, x `[M, Dh]`, as a fast matmul with a constant R `[Dh, Dh]`.
 * Gradient: `dx = dy·Rᵀ` (R is constant, so no weight gradient is computed).
 */
function rotateHalf(x: tf.Tensor2D, r: tf.Tensor2D): tf.Tensor2D {
  const op = customGrad1((input, save) => {
    // Tensors of the forward pass are released before the backward pass unless saved.
    save([r]);
    return {
      value: tf.matMul(input as tf.Tensor2D, r),
      gradFunc: (dy, saved) => tf.matMul(dy as tf.Tensor2D, tf.transpose(saved[0] as tf.Tensor2D)),
    };
  });
  return op(x) as tf.Tensor2D;
}

/** Token-major rotary tables `[N, Dh/2]` for the native `rotary` op: cos(p·θ_i), sin(p·θ_i), θ_i = base^(−2i/Dh). */
function rotaryHalfTables(positions: Int32Array, N: number, Dh: number, base: number): [tf.Tensor2D, tf.Tensor2D] {
  const half = Dh / 2;
  const table = angleTable(Dh, base, maxPosition(positions) + 1);
  const cos = new Float32Array(N * half);
  const sin = new Float32Array(N * half);
  for (let n = 0; n < N; n++) {
    cos.set(table.cos.subarray(positions[n] * half, (positions[n] + 1) * half), n * half);
    sin.set(table.sin.subarray(positions[n] * half, (positions[n] + 1) * half), n * half);
  }
  return [tf.tensor2d(cos, [N, half]), tf.tensor2d(sin, [N, half])];
}

function rotateHalfMatrix(Dh: number): tf.Tensor2D {
  const half = Dh / 2;
  const r = new Float32Array(Dh * Dh);
  for (let j = 0; j < half; j++) {
    r[(j + half) * Dh + j] = -1;
    r[j * Dh + j + half] = 1;
  }
  return tf.tensor2d(r, [Dh, Dh]);
}

/**
 * Inverted dropout: x · mask, mask 1/(1 − rate) where the element is kept, else 0. An element is
 * kept when its uniform draw u > rate, both as float32: the masks of
 * `tf.step(tf.randomUniform(shape, 0, 1, 'float32', seed) − rate) · 1/(1 − rate)`, the same draws
 * (`seedrandom`'s alea seeded with the seed's string, as TF.js's randomUniform; its state taken once,
 * its step run inline) made in one loop into the mask instead of four tensor ops over the activations
 * (tested bit for bit against them).
 */
export function dropout<T extends tf.Tensor>(x: T, rate: number, rng: SplitMix32 | undefined): T {
  if (!rng || rate === 0) return x;
  // alea's seeded state, then its step (t = 2091639·s0 + c·2⁻³², c = ⌊t⌋, draw t − c) on locals.
  let { c, s0, s1, s2 } = (alea(String(nextSeed(rng)), { state: true }) as unknown as { state(): AleaState }).state();
  const threshold = Math.fround(rate);
  const scale = Math.fround(1 / (1 - rate));
  const mask = new Float32Array(x.size);
  for (let i = 0; i < mask.length; i++) {
    const t = 2091639 * s0 + c * 2.3283064365386963e-10;
    s0 = s1;
    s1 = s2;
    c = t | 0;
    s2 = t - c;
    if (Math.fround(s2) > threshold) mask[i] = scale;
  }
  return tf.mul(x, tf.tensor(mask, x.shape, 'float32')) as T;
}

/** seedrandom's alea generator state (`state: true`). */
interface AleaState {
  c: number;
  s0: number;
  s1: number;
  s2: number;
}

function defaultPositions(B: number, T: number, offset: number): Int32Array {
  const p = new Int32Array(B * T);
  for (let n = 0; n < B * T; n++) p[n] = offset + (n % T);
  return p;
}

/**
 * Final hidden states `[N, D]` after the last norm: the input of the LM head and of the value head.
 *
 * Per layer, with x `[N, D]`:
 *   q, k, v = RMSNorm(x)·Wq, ·Wk, ·Wv → heads `[B·H, T, Dh]`, rotary on q and k
 *   A = softmax(q·kᵀ/√Dh + bias) `[B·H, T, Tk]`,  x ← x + drop((A·v → `[N, D]`)·Wo)
 *   x ← x + drop(gelu(RMSNorm(x)·W1)·W2)
 */
export function forwardHidden(model: Model, input: ForwardInput): tf.Tensor2D {
  const { config, params } = model;
  const { batch: B, seq: T } = input;
  const D = config.width;
  const H = config.heads;
  const Dh = D / H;
  const N = B * T;
  const past = input.cache?.length ?? 0;
  if (past + T > config.contextLength) throw new Error(`sequence of ${past + T} exceeds the context of ${config.contextLength}`);
  const rng = input.dropoutSeed === undefined || config.dropout === 0 ? undefined : new SplitMix32(input.dropoutSeed);
  const positions = input.positions ?? defaultPositions(B, T, past);
  const ids = tf.tensor1d(input.ids, 'int32');
  let x = gatherRows(params.tok_emb as tf.Tensor2D, ids);
  if (config.positions === 'learned') x = tf.add(x, gatherRows(params.pos_emb as tf.Tensor2D, tf.tensor1d(positions, 'int32')));
  x = dropout(x, config.dropout, rng);
  const bias = attentionBias(input, past);
  // Without a KV cache and with native kernels, attention runs fused on token-major `[N, D]`
  // activations: no head transposes, no per-head pieces.
  if (!input.cache && nativeKernels()) return fusedLayers(model, x, tf.reshape(bias, [B, T, T]), positions, rng);
  const [cos, sin] = config.positions === 'rotary' ? rotaryTables(positions, B, T, Dh, config.ropeBase) : [undefined, undefined];
  const rot = config.positions === 'rotary' ? rotateHalfMatrix(Dh) : undefined;
  const toHeads = (t: tf.Tensor2D): tf.Tensor4D => tf.transpose(tf.reshape(t, [B, T, H, Dh]), [0, 2, 1, 3]);
  const rotary = (t: tf.Tensor4D): tf.Tensor4D => {
    if (!cos || !sin || !rot) return t;
    const turned = tf.reshape(rotateHalf(tf.reshape(t, [N * H, Dh]), rot), [B, H, T, Dh]);
    return tf.add(tf.mul(t, cos), tf.mul(turned, sin));
  };
  for (let l = 0; l < config.layers; l++) {
    const p = `layers.${l}.`;
    const h = rmsNorm(x, params[`${p}norm1`], config.normEps);
    const q: tf.Tensor3D = tf.reshape(rotary(toHeads(linear(h, params[`${p}wq`] as tf.Tensor2D))), [B * H, T, Dh]);
    let k: tf.Tensor3D = tf.reshape(rotary(toHeads(linear(h, params[`${p}wk`] as tf.Tensor2D))), [B * H, T, Dh]);
    let v: tf.Tensor3D = tf.reshape(toHeads(linear(h, params[`${p}wv`] as tf.Tensor2D)), [B * H, T, Dh]);
    if (input.cache) {
      const cache = input.cache;
      if (cache.k[l]) {
        k = tf.concat([cache.k[l], k], 1) as tf.Tensor3D;
        v = tf.concat([cache.v[l], v], 1) as tf.Tensor3D;
        cache.k[l].dispose();
        cache.v[l].dispose();
      }
      cache.k[l] = tf.keep(k);
      cache.v[l] = tf.keep(v);
    }
    const Tk = past + T;
    const scores = tf.reshape(attend(q, k, 1 / Math.sqrt(Dh)), [B, H, T, Tk]);
    const probs: tf.Tensor3D = tf.reshape(tf.softmax(tf.add(scores, bias)), [B * H, T, Tk]);
    const mixed: tf.Tensor3D = T === 1 ? tf.sum(tf.mul(tf.reshape(probs, [B * H, Tk, 1]), v), 1, true) : bmm(probs, v);
    const o: tf.Tensor2D = tf.reshape(tf.transpose(tf.reshape(mixed, [B, H, T, Dh]), [0, 2, 1, 3]), [N, D]);
    x = tf.add(x, dropout(linear(o, params[`${p}wo`] as tf.Tensor2D), config.dropout, rng));
    const h2 = rmsNorm(x, params[`${p}norm2`], config.normEps);
    const m = linear(gelu(linear(h2, params[`${p}w1`] as tf.Tensor2D)), params[`${p}w2`] as tf.Tensor2D);
    x = tf.add(x, dropout(m, config.dropout, rng));
  }
  if (input.cache) input.cache.length = past + T;
  return rmsNorm(x, params.norm_f, config.normEps);
}

/** The layers of `forwardHidden` on the fused native kernels, x `[N, D]` embeddings, bias `[B, T, T]`. */
function fusedLayers(model: Model, input: tf.Tensor2D, bias: tf.Tensor3D, positions: Int32Array, rng: SplitMix32 | undefined): tf.Tensor2D {
  const { config, params } = model;
  const H = config.heads;
  const N = input.shape[0];
  const [cos, sin] = config.positions === 'rotary' ? rotaryHalfTables(positions, N, config.width / H, config.ropeBase) : [undefined, undefined];
  const rope = (t: tf.Tensor2D): tf.Tensor2D => (cos && sin ? rotary(t, cos, sin, H) : t);
  let x = input;
  for (let l = 0; l < config.layers; l++) {
    const p = `layers.${l}.`;
    const h = rmsNorm(x, params[`${p}norm1`], config.normEps);
    const q = rope(linear(h, params[`${p}wq`] as tf.Tensor2D));
    const k = rope(linear(h, params[`${p}wk`] as tf.Tensor2D));
    const v = linear(h, params[`${p}wv`] as tf.Tensor2D);
    const o = attention(q, k, v, bias, H);
    x = tf.add(x, dropout(linear(o, params[`${p}wo`] as tf.Tensor2D), config.dropout, rng));
    const h2 = rmsNorm(x, params[`${p}norm2`], config.normEps);
    const m = linear(gelu(linear(h2, params[`${p}w1`] as tf.Tensor2D)), params[`${p}w2`] as tf.Tensor2D);
    x = tf.add(x, dropout(m, config.dropout, rng));
  }
  return rmsNorm(x, params.norm_f, config.normEps);
}

/** Scores `q·kᵀ·scale` `[B·H, T, Tk]`; a single query row (decoding) uses a broadcast product instead of a matmul. */
function attend(q: tf.Tensor3D, k: tf.Tensor3D, scale: number): tf.Tensor3D {
  if (q.shape[1] === 1) return tf.reshape(tf.mul(tf.sum(tf.mul(q, k), 2), scale), [q.shape[0], 1, k.shape[1]]);
  // OpenBLAS reads kᵀ in place; the built-in gradient of a transposed matMul stays on it too.
  if (nativeKernels()) return tf.mul(tf.matMul(q, k, false, true), scale);
  return tf.mul(bmm(q, tf.transpose(k, [0, 2, 1])), scale);
}

/** LM logits `[N, V]` from hidden states `[N, D]`. */
export function lmLogits(model: Model, hidden: tf.Tensor2D): tf.Tensor2D {
  if (!model.params.lm_head) throw new Error('this model has no LM head');
  return linear(hidden, model.params.lm_head as tf.Tensor2D);
}

/** Scalar head `r = h·w + b`, h `[M, D]` → `[M]`. */
export function valueHead(model: Model, hidden: tf.Tensor2D): tf.Tensor1D {
  if (!model.params.value_w) throw new Error('this model has no value head');
  return tf.reshape(tf.add(linear(hidden, model.params.value_w as tf.Tensor2D), model.params.value_b), [-1]);
}

/** Rows of `[N, D]` at the given flat indices `[M]` → `[M, D]` (e.g. the last token of each sequence). */
export function pickRows(hidden: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  return gatherRows(hidden, tf.tensor1d(rows, 'int32'));
}
