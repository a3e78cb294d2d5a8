/**
 * Batched sampling with a KV cache: n samples per prompt, temperature, top-p, max tokens, stop
 * sequences, seed; a per-step callback for streaming, and an async variant that lets the event loop
 * run between steps.
 */
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
  /**
   * Called after every decoding step with the tokens that step made final. Without it nothing is
   * computed for it; with it the samples are the same (the callback only reads).
   */
  onStep?: (step: GenerationStep) => void;
}

/** What one decoding step produced, for `SampleOptions.onStep`. */
export interface GenerationStep {
  /** Step index, from 0; step k samples the (k+1)-th token of every row. */
  step: number;
  /**
   * Per row (the order of the returned samples): the tokens that became final at this step, in
   * order. A token that could still be the start of a stop sequence is held back until the sequence
   * is ruled out or the row ends, so the tokens reported for a row join to exactly its returned
   * `tokens` (stop sequences and the end token never appear).
   */
  tokens: number[][];
  /** Per row: its finish reason once it has ended (at this step or earlier), else null. */
  finished: (Sample['finishReason'] | null)[];
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

/** Length of the longest suffix of `tokens` that is a proper prefix of one of `stops` (tokens that may yet become a stop sequence). */
function pendingStop(tokens: number[], stops: number[][]): number {
  let longest = 0;
  for (const stop of stops) {
    for (let k = Math.min(stop.length - 1, tokens.length); k > longest; k--) {
      let match = true;
      for (let i = 0; i < k && match; i++) match = tokens[tokens.length - k + i] === stop[i];
      if (match) {
        longest = k;
        break;
      }
    }
  }
  return longest;
}

/**
 * Samples `n` continuations of every prompt. Prompts are left-padded into one batch of R = prompts × n
 * rows; padded keys are masked and positions start at each prompt's first real token. One forward pass
 * over the prompts fills the KV cache, then each step feeds one token per row.
 */
export function generate(model: Model, prompts: number[][], options: SampleOptions): Sample[] {
  const steps = decodeSteps(model, prompts, options);
  try {
    for (let next = steps.next(); ; next = steps.next()) {
      if (next.done) return next.value;
      options.onStep?.(next.value);
    }
  } finally {
    // Releases the KV cache when `onStep` threw before the last step.
    steps.return([]);
  }
}

/**
 * `generate` that awaits the event loop after every step, so that what `onStep` wrote (streamed
 * chunks) goes out and other sockets are served while a long generation runs. Same samples as
 * `generate` for the same options. With `signal`, an abort stops decoding after the current step
 * and rejects with the signal's reason.
 */
export async function generateAsync(model: Model, prompts: number[][], options: SampleOptions & { signal?: AbortSignal }): Promise<Sample[]> {
  options.signal?.throwIfAborted();
  const steps = decodeSteps(model, prompts, options);
  try {
    for (let next = steps.next(); ; next = steps.next()) {
      if (next.done) return next.value;
      options.onStep?.(next.value);
      await new Promise<void>((resolve) => setImmediate(resolve));
      options.signal?.throwIfAborted();
    }
  } finally {
    steps.return([]);
  }
}

/**
 * The decoding loop of `generate`, one yield per step (after sampling, before the next forward
 * pass); returns the samples. The tokens of each `GenerationStep` are computed only when
 * `options.onStep` is set.
 */
function* decodeSteps(model: Model, prompts: number[][], options: SampleOptions): Generator<GenerationStep, Sample[], void> {
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
  const track = options.onStep !== undefined;
  const reported = new Array<number>(R).fill(0);
  /** The step's report: per row, the tokens past those reported that no stop sequence can take back any more. */
  const report = (step: number, last: boolean): GenerationStep => ({
    step,
    tokens: out.map((sample, b) => {
      if (!track) return [];
      const final = done[b] || last ? sample.tokens.length : sample.tokens.length - pendingStop(sample.tokens, options.stop ?? []);
      const fresh = sample.tokens.slice(reported[b], final);
      reported[b] = Math.max(reported[b], final);
      return fresh;
    }),
    finished: out.map((sample, b) => (done[b] || last ? sample.finishReason : null)),
  });
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
      const last = done.every(Boolean) || step === maxTokens - 1;
      yield report(step, last);
      if (last) break;
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
