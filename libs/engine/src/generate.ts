/** Batched sampling with a KV cache: n samples per prompt, temperature, top-p, max tokens, stop sequences, seed. */
import * as tf from '@tensorflow/tfjs-core';
import { forwardHidden, lmLogits, pickRows, type KvCache, type Model } from './model';
import { Rng } from './rng';

export interface SampleOptions {
  /** Samples per prompt. */
  n?: number;
  /** 0 picks the most likely token. */
  temperature?: number;
  /** Nucleus sampling: keep the most likely tokens whose probabilities sum to at least `topP`. */
  topP?: number;
  maxTokens: number;
  /** Token sequences that end a sample; they are not part of the returned tokens. */
  stop?: number[][];
  /** Token that ends a sample (kept out of the returned tokens). */
  eos?: number;
  seed?: number;
}

export interface Sample {
  /** Index of the prompt this sample continues. */
  prompt: number;
  tokens: number[];
  finishReason: 'stop' | 'length';
}

/**
 * Draws a token from logits `[V]`: p = softmax(z / temperature), restricted to the smallest set of
 * tokens with Σp ≥ topP, renormalised.
 */
export function sampleToken(logits: Float32Array, temperature: number, topP: number, rng: Rng): number {
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
  let u = rng.next() * total;
  for (const i of order) {
    u -= probs[i];
    if (u <= 0) return i;
  }
  return order[order.length - 1];
}

function endsWith(tokens: number[], stop: number[]): boolean {
  if (stop.length === 0 || tokens.length < stop.length) return false;
  for (let i = 0; i < stop.length; i++) if (tokens[tokens.length - stop.length + i] !== stop[i]) return false;
  return true;
}

/**
 * Samples `n` continuations of every prompt. Prompts are left-padded into one batch of R = prompts × n
 * rows; padded keys are masked and positions start at each prompt's first real token. One forward pass
 * over the prompts fills the KV cache, then each step feeds one token per row.
 */
export function generate(model: Model, prompts: number[][], options: SampleOptions): Sample[] {
  const n = options.n ?? 1;
  const temperature = options.temperature ?? 1;
  const topP = options.topP ?? 1;
  const rng = new Rng(options.seed ?? 0);
  const rows = prompts.flatMap((p, i) => Array.from({ length: n }, () => ({ prompt: i, ids: p })));
  const R = rows.length;
  const L = Math.max(...rows.map((r) => r.ids.length));
  if (L === 0) throw new Error('empty prompt');
  const maxTokens = Math.min(options.maxTokens, model.config.contextLength - L);
  const ids = new Int32Array(R * L);
  const positions = new Int32Array(R * L);
  const valid: number[][] = rows.map((r) => {
    const pad = L - r.ids.length;
    return Array.from({ length: L }, (_, t) => (t < pad ? 0 : 1));
  });
  rows.forEach((r, b) => {
    const pad = L - r.ids.length;
    for (let t = 0; t < L; t++) {
      ids[b * L + t] = t < pad ? 0 : r.ids[t - pad];
      positions[b * L + t] = Math.max(0, t - pad);
    }
  });
  const cache: KvCache = { k: [], v: [], length: 0 };
  const out: Sample[] = rows.map((r) => ({ prompt: r.prompt, tokens: [], finishReason: 'length' }));
  const done = new Array<boolean>(R).fill(false);
  const nextPos = rows.map((r) => r.ids.length);
  const keyValid = (): Uint8Array => {
    const width = valid[0].length;
    const m = new Uint8Array(R * width);
    valid.forEach((v, b) => m.set(v, b * width));
    return m;
  };
  try {
    let logits = tf.tidy(() => {
      const hidden = forwardHidden(model, { ids, batch: R, seq: L, positions, keyValid: keyValid(), cache });
      const last = Int32Array.from({ length: R }, (_, b) => b * L + L - 1);
      return lmLogits(model, pickRows(hidden, last)).dataSync() as Float32Array;
    });
    const V = logits.length / R;
    for (let step = 0; step < maxTokens; step++) {
      const next = new Int32Array(R);
      for (let b = 0; b < R; b++) {
        const token = sampleToken(logits.subarray(b * V, (b + 1) * V), temperature, topP, rng);
        next[b] = token;
        if (done[b]) continue;
        const sample = out[b];
        if (token === options.eos) {
          done[b] = true;
          sample.finishReason = 'stop';
          continue;
        }
        sample.tokens.push(token);
        const stop = options.stop?.find((s) => endsWith(sample.tokens, s));
        if (stop) {
          sample.tokens.length -= stop.length;
          sample.finishReason = 'stop';
          done[b] = true;
        }
      }
      if (done.every(Boolean) || step === maxTokens - 1) break;
      valid.forEach((v) => v.push(1));
      const pos = Int32Array.from(nextPos);
      nextPos.forEach((_, b) => (nextPos[b] += 1));
      logits = tf.tidy(() => {
        const hidden = forwardHidden(model, { ids: next, batch: R, seq: 1, positions: pos, keyValid: keyValid(), cache });
        return lmLogits(model, hidden).dataSync() as Float32Array;
      });
    }
  } finally {
    for (const t of [...cache.k, ...cache.v]) t.dispose();
  }
  return out;
}
