/**
 * Batched sampling with a KV cache: n samples per prompt, temperature, top-p, max tokens, stop
 * sequences, seed; a per-step callback for streaming, and an async variant that lets the event loop
 * run between steps.
 *
 * With the native addon the forward passes run in `NativeDecoder` (one addon call per step over a KV
 * cache written in place); without it, on TF.js kernels (`forwardHidden` with a `KvCache`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { SplitMix32, type Rng } from '@xyp/random';
import { forwardHidden, lmLogits, pickRows, valueHead, type KvCache, type Model } from './model';
import { tokenLogProb } from './logprob';
import { nativeBlas, nativeDecoder } from './native';

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
   * Also return each sampled token's log-probability at temperature 1 under the model (`log
   * softmax(z)[token]` of the raw logits, whatever the sampling temperature and top-p), from the
   * forward pass that sampled it: the old policy's log-probabilities of a PPO rollout, without a
   * second pass. Same tokens either way.
   */
  logprobs?: boolean;
  /**
   * Also return, per sampled token, the value head's value of the state it was sampled from (the
   * hidden state of the token before it). Needs a model with a value head.
   */
  values?: boolean;
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
  /** With `SampleOptions.logprobs`: per token, its log-probability at temperature 1. */
  logprobs?: number[];
  /** With `SampleOptions.values`: per token, the value of the state it was sampled from. */
  values?: number[];
}

let fusedDecoding = true;

/**
 * Switches the native decoder off (`false`: sampling runs its forward passes on TF.js kernels even
 * with the addon, as before it existed) or back on; returns the previous setting. For benchmarks and
 * tests that compare both paths in one process.
 */
export function useFusedDecoding(on: boolean): boolean {
  const previous = fusedDecoding;
  fusedDecoding = on;
  return previous;
}

/** Whether `generate` runs its forward passes on the native decoder now (addon loaded and on, WASM backend, fused decoding on). */
export function fusedDecodingActive(): boolean {
  return fusedDecoding && typeof nativeBlas()?.decode === 'function' && tf.getBackend() === 'wasm';
}

/** Buckets of the first selection pass of the nucleus (top 11 bits of a key) and digits of its radix sort. */
const BUCKETS = 2048;

/**
 * Work arrays of `sampleTokens` for `rows` rows of a vocabulary. Passing the same one to every call
 * of a decoding loop spares the allocations; the results do not depend on it.
 */
export class SamplerScratch {
  /** p per row and token, `[rows, V]`. */
  readonly probs: Float64Array;
  readonly totals: Float64Array;
  readonly targets: Float64Array;
  /** The nucleus candidates of each row, `[rows, V]`, the first `counts[r]` of a row in use. */
  readonly order: Int32Array;
  readonly counts: Int32Array;
  readonly keys: Uint32Array;
  readonly keys2: Uint32Array;
  readonly order2: Int32Array;
  readonly count = new Int32Array(BUCKETS);
  readonly mass = new Float64Array(BUCKETS);

  constructor(
    readonly vocab: number,
    readonly rows = 1,
  ) {
    this.probs = new Float64Array(rows * vocab);
    this.totals = new Float64Array(rows);
    this.targets = new Float64Array(rows);
    this.order = new Int32Array(rows * vocab);
    this.counts = new Int32Array(rows);
    this.keys = new Uint32Array(vocab);
    this.keys2 = new Uint32Array(vocab);
    this.order2 = new Int32Array(vocab);
  }
}

/**
 * Draws a token from logits `[V]`: p = softmax(z / temperature), restricted to the smallest set of
 * tokens with Σp ≥ topP, renormalised. `sampleTokens` for one row.
 */
export function sampleToken(logits: Float32Array, temperature: number, topP: number, rng: Rng, scratch?: SamplerScratch): number {
  return sampleTokens(logits, 1, temperature, topP, rng, scratch)[0];
}

/**
 * Draws one token per row of logits `[rows, V]`, rows in order, each as `sampleToken` defines it:
 *
 * p_i = exp((z_i − max z) / temperature) in double precision, total = Σp in index order. With topP < 1
 * the tokens are ordered by p descending, ties by index ascending; the nucleus is the shortest prefix
 * whose running sum (in that order) reaches topP · total, at least one token; u = nextFloat() · its
 * sum, and the token is the first of the prefix at which u minus the running sum drops to ≤ 0. With
 * topP ≥ 1 the same walk runs over all tokens in index order. One `rng.nextFloat()` per row unless
 * temperature ≤ 0 (greedy: the first largest logit, no draw).
 *
 * The nucleus is found without a comparison sort of the vocabulary (`nucleusCandidates`); with the
 * native addon that step runs there for all rows at once (`nucleus` in blas.c, the same algorithm and
 * result). The sums and the walk stay here, so the tokens are those of the plain sort either way.
 */
export function sampleTokens(
  logits: Float32Array,
  rows: number,
  temperature: number,
  topP: number,
  rng: Rng,
  scratch?: SamplerScratch,
  out = new Int32Array(rows),
): Int32Array {
  const V = logits.length / rows;
  if (!Number.isInteger(V) || V < 1) throw new Error(`${logits.length} logits do not split into ${rows} rows`);
  for (let b = 0; b < rows; b++) {
    let best = b * V;
    for (let i = b * V + 1; i < (b + 1) * V; i++) if (logits[i] > logits[best]) best = i;
    out[b] = best - b * V;
  }
  if (temperature <= 0) return out;
  const s = scratch && scratch.vocab === V && scratch.rows >= rows ? scratch : new SamplerScratch(V, rows);
  const { probs, totals, targets, order, counts } = s;
  for (let b = 0; b < rows; b++) {
    const top = logits[b * V + out[b]];
    let total = 0;
    for (let i = b * V; i < (b + 1) * V; i++) {
      const p = Math.exp((logits[i] - top) / temperature);
      probs[i] = p;
      total += p;
    }
    totals[b] = total;
    targets[b] = topP * total;
  }
  if (!(topP < 1)) {
    for (let b = 0; b < rows; b++) {
      let u = rng.nextFloat() * totals[b];
      out[b] = V - 1;
      for (let i = 0; i < V; i++) {
        u -= probs[b * V + i];
        if (u <= 0) {
          out[b] = i;
          break;
        }
      }
    }
    return out;
  }
  const blas = nativeBlas();
  if (blas && typeof blas.nucleus === 'function') blas.nucleus(logits, probs, targets, order, counts, rows, V);
  else {
    for (let b = 0; b < rows; b++) {
      counts[b] = nucleusCandidates(logits.subarray(b * V, (b + 1) * V), probs.subarray(b * V, (b + 1) * V), targets[b], s, order.subarray(b * V, (b + 1) * V));
    }
  }
  for (let b = 0; b < rows; b++) {
    const p = probs.subarray(b * V, (b + 1) * V);
    let row = order.subarray(b * V, (b + 1) * V);
    const target = targets[b];
    let n = counts[b];
    let cum = 0;
    let keep = 0;
    while (keep < n && cum < target) cum += p[row[keep++]];
    if (n < V && cum < target) {
      // Cannot happen by the margin of `nucleusCandidates`; the full sort decides if it ever does.
      row = sortByProbability(p);
      n = V;
      cum = 0;
      keep = 0;
      while (keep < n && cum < target) cum += p[row[keep++]];
    }
    const kept = Math.max(1, keep);
    let u = rng.nextFloat() * cum;
    out[b] = row[kept - 1];
    for (let j = 0; j < kept; j++) {
      u -= p[row[j]];
      if (u <= 0) {
        out[b] = row[j];
        break;
      }
    }
  }
  return out;
}

/** Every token sorted by p descending, ties by index ascending (the reference order of the nucleus). */
function sortByProbability(probs: Float64Array): Int32Array {
  const sorted = Array.from({ length: probs.length }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  return Int32Array.from(sorted);
}

/**
 * Writes into `order[0..n)` tokens sorted by p descending (ties by index) that begin the full order
 * and hold at least `target` of the mass (all tokens when the first buckets do not), and returns n.
 *
 * Key of a token: the float32 bits of its logit mapped so that ascending keys are descending logits
 * (−0 as +0); p = exp((z − max)/temperature) does not increase along them. The mass of each bucket of
 * the key's top 11 bits is summed; the candidates are the buckets up to the first where the running
 * mass reaches target · (1 + 1e-9) (double rounding of sums of a few thousand terms is below 1e-12 of
 * them, so the exact running sum crosses target inside). They are radix-sorted on the key (stable, so
 * equal logits stay in index order); runs of equal p from different logits (exp underflow, extreme
 * temperatures) are put in index order, and an order that does not descend in p (or a candidate below
 * an excluded token) sends everything to the comparison sort.
 */
function nucleusCandidates(logits: Float32Array, probs: Float64Array, target: number, s: SamplerScratch, order: Int32Array): number {
  const V = logits.length;
  const bits = new Int32Array(logits.buffer, logits.byteOffset, V);
  const { keys, count, mass } = s;
  count.fill(0);
  mass.fill(0);
  for (let i = 0; i < V; i++) {
    let b = bits[i];
    if (b === -2147483648) b = 0;
    const key = b < 0 ? b >>> 0 : 0x7fffffff - b;
    keys[i] = key;
    const bucket = key >>> 21;
    count[bucket]++;
    mass[bucket] += probs[i];
  }
  const bound = target * (1 + 1e-9);
  let cut = BUCKETS - 1;
  let acc = 0;
  for (let c = 0; c < BUCKETS; c++) {
    acc += mass[c];
    if (count[c] > 0 && acc >= bound) {
      cut = c;
      break;
    }
  }
  let n = 0;
  let maxExcluded = -1;
  for (let i = 0; i < V; i++) {
    const key = keys[i];
    if (key >>> 21 <= cut) {
      // Compacting in place is safe: n ≤ i.
      keys[n] = key;
      order[n++] = i;
    } else if (probs[i] > maxExcluded) maxExcluded = probs[i];
  }
  radixSort(n, s, order);
  const full = (): number => {
    order.set(sortByProbability(probs));
    return V;
  };
  for (let j = 1; j < n; j++) if (probs[order[j]] > probs[order[j - 1]]) return full();
  if (n < V && n > 0 && maxExcluded >= probs[order[n - 1]]) return full();
  // Equal p from different logits: index order within the run, as the reference sort has it.
  for (let j = 1; j < n; ) {
    if (probs[order[j]] !== probs[order[j - 1]]) {
      j++;
      continue;
    }
    const start = j - 1;
    let end = j + 1;
    while (end < n && probs[order[end]] === probs[order[start]]) end++;
    for (let r = start + 1; r < end; r++) {
      if (order[r] < order[r - 1]) {
        order.subarray(start, end).sort();
        break;
      }
    }
    j = end;
  }
  return n;
}

/** Stable LSD radix sort of `s.keys[0..n)` ascending, carrying `order` (digits of 11, 11 and 10 bits). */
function radixSort(n: number, s: SamplerScratch, order: Int32Array): void {
  let keys = s.keys;
  let ids = order;
  let keysOut = s.keys2;
  let idsOut = s.order2;
  const count = s.count;
  for (let shift = 0; shift < 32; shift += 11) {
    count.fill(0);
    for (let j = 0; j < n; j++) count[(keys[j] >>> shift) & (BUCKETS - 1)]++;
    if (n === 0 || count[(keys[0] >>> shift) & (BUCKETS - 1)] === n) continue;
    let sum = 0;
    for (let d = 0; d < BUCKETS; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (let j = 0; j < n; j++) {
      const key = keys[j];
      const at = count[(key >>> shift) & (BUCKETS - 1)]++;
      keysOut[at] = key;
      idsOut[at] = ids[j];
    }
    [keys, keysOut] = [keysOut, keys];
    [ids, idsOut] = [idsOut, ids];
  }
  if (ids !== order) order.set(ids.subarray(0, n));
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
  const rng = new SplitMix32(options.seed ?? 0);
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
  // The native decoder keeps its own cache, preallocated for the prompt and every sampled token.
  const decoder =
    fusedDecoding && L <= model.config.contextLength
      ? nativeDecoder(model, R, L + Math.max(0, maxTokens), Int32Array.from(rows, (r) => L - r.ids.length))
      : undefined;
  const scratch = new SamplerScratch(model.config.vocabSize, R);
  const wantLogp = options.logprobs === true;
  const wantValues = options.values === true;
  if (wantValues && !model.params.value_w) throw new Error('values asked for, but this model has no value head');
  const out: Sample[] = rows.map((r) => ({
    prompt: r.prompt,
    tokens: [],
    finishReason: 'length',
    ...(wantLogp ? { logprobs: [] } : {}),
    ...(wantValues ? { values: [] } : {}),
  }));
  const V = model.config.vocabSize;
  const D = model.config.width;
  // The value head's weights, read once (the model does not change while it samples).
  const valueW = wantValues ? ((model.params.value_w as tf.Tensor).dataSync() as Float32Array) : undefined;
  const valueB = wantValues ? ((model.params.value_b as tf.Tensor).dataSync() as Float32Array)[0] : 0;
  const hidden = wantValues && decoder ? new Float32Array(R * D) : undefined;
  /** Per row, the value of the state the next token is sampled from. */
  let stepValues: Float32Array = new Float32Array(wantValues ? R : 0);
  const nativeValues = (): void => {
    if (!hidden || !valueW) return;
    for (let b = 0; b < R; b++) {
      let v = valueB;
      for (let j = 0; j < D; j++) v += hidden[b * D + j] * valueW[j];
      stepValues[b] = v;
    }
  };
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
    /** The TF.js pass: logits of each row's last token and, when asked for, the values of its state. */
    const tfjsStep = (hiddenOf: () => tf.Tensor2D, lastRows: Int32Array | undefined): Float32Array =>
      tf.tidy(() => {
        const h = hiddenOf();
        const picked = lastRows ? pickRows(h, lastRows) : h;
        if (wantValues) stepValues = valueHead(model, picked).dataSync() as Float32Array;
        return lmLogits(model, picked).dataSync() as Float32Array;
      });
    /** One forward pass: the logits of each row's last new token (and its state's value, when asked for). */
    const forward = (input: { ids: Int32Array; seq: number; positions: Int32Array }, lastRows: Int32Array | undefined): Float32Array => {
      if (!decoder) {
        return tfjsStep(() => forwardHidden(model, { ids: input.ids, batch: R, seq: input.seq, positions: input.positions, keyValid: keyValid(), cache }), lastRows);
      }
      const z = decoder.forward(input.ids, input.positions, input.seq, hidden);
      nativeValues();
      return z;
    };
    let logits = forward({ ids, seq: L, positions }, Int32Array.from({ length: R }, (_, b) => b * L + L - 1));
    for (let step = 0; step < maxTokens; step++) {
      const next = sampleTokens(logits, R, temperature, topP, rng, scratch);
      for (let b = 0; b < R; b++) {
        const token = next[b];
        if (done[b]) continue;
        const sample = out[b];
        if (token === options.eos) {
          done[b] = true;
          sample.finishReason = 'stop';
          continue;
        }
        sample.tokens.push(token);
        // At temperature 1 the sampler's own p_i = exp(z_i − max z) and Σp are those of the log-softmax.
        if (wantLogp) sample.logprobs?.push(temperature === 1 ? Math.log(scratch.probs[b * V + token] / scratch.totals[b]) : tokenLogProb(logits, b, V, token));
        if (wantValues) sample.values?.push(stepValues[b]);
        const stop = options.stop?.find((s) => endsWith(sample.tokens, s));
        if (stop) {
          sample.tokens.length -= stop.length;
          if (sample.logprobs) sample.logprobs.length = sample.tokens.length;
          if (sample.values) sample.values.length = sample.tokens.length;
          sample.finishReason = 'stop';
          done[b] = true;
        }
      }
      const last = done.every(Boolean) || step === maxTokens - 1;
      yield report(step, last);
      if (last) break;
      const pos = Int32Array.from(nextPos);
      nextPos.forEach((_, b) => (nextPos[b] += 1));
      // The key mask of the TF.js passes (the native decoder keeps its own).
      if (!decoder) valid.forEach((v) => v.push(1));
      logits = forward({ ids: next, seq: 1, positions: pos }, undefined);
    }
  } finally {
    for (const t of [...cache.k, ...cache.v]) t.dispose();
  }
  return out;
}
