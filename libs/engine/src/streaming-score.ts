/**
 * Teacher-forced log-probabilities under a frozen model of tokens that another model is sampling,
 * computed while it samples: PPO's reference pass overlapped with the policy's rollout.
 *
 * The sampler's decoding steps run one row group on the JS thread (a batch of single tokens is too
 * thin to split), so a second core sits idle during a rollout. `StreamingScorer` puts the reference
 * on it: `decodeScoreAsync` (blas.c) runs each call on a libuv worker thread while decoding goes on.
 *
 *  1. At the first `push` (after the sampler's own prefill, which takes both cores), one call
 *     prefills every distinct prompt but its last token into a KV cache of one row per prompt
 *     (left-padded as `generate` lays prompts out); its slots are then copied into the rows of each
 *     of its samples (`nativeScoreSharedPrompts`' layout).
 *  2. `push(step)` takes each decoding step's final tokens (`SampleOptions.onStep`). Once every row
 *     still sampling holds `chunk` more tokens, a call is queued for those positions: per row, the
 *     inputs are the prompt's last token or the token before, the targets the new tokens; a row that
 *     ended earlier has target −1 there (no LM head).
 *  3. `finish()` waits for the calls queued and scores the positions left on the JS thread, which
 *     sampling no longer holds (`decodeScore`, both cores), then returns each row's log-probabilities
 *     of its tokens.
 *
 * Calls run one at a time, in order, at positions fixed by the token counts alone (never by timing),
 * so the result is the same from run to run. Every product of the worker thread runs on the addon's
 * own thin kernel, so it never touches OpenBLAS's process-wide thread count. The weights are copied
 * out of the WASM heap at `open` (the heap moves when it grows); the model may change afterwards.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { GenerationStep } from './generate';
import type { Model } from './model';
import { DECODE_WORKERS, SCORE_CHUNK, copyPromptSlots, decoderWeightNames, heapF32, lookUpWeights, nativeBlas, promptPrefill, ropeTables, type NativeBlas } from './native';

export interface StreamingScorerOptions {
  /** Positions per call (default 4): a call is queued once every row still sampling has this many new tokens. */
  chunk?: number;
}

type DecodeScore = NonNullable<NativeBlas['decodeScore']>;
type DecodeScoreAsync = NonNullable<NativeBlas['decodeScoreAsync']>;

/**
 * KV caches and scratch of finished scorers, reused by the next ones (a PPO round opens one per
 * round): allocating and zeroing megabytes costs the JS thread more than the round's bookkeeping.
 * Every slot a call reads is written in that scorer first, so nothing needs clearing.
 */
const pool: Float32Array[] = [];
function acquire(floats: number): Float32Array {
  let best = -1;
  pool.forEach((b, i) => {
    if (b.length >= floats && (best < 0 || b.length < pool[best].length)) best = i;
  });
  return best >= 0 ? (pool.splice(best, 1)[0] as Float32Array) : new Float32Array(floats);
}
function release(...buffers: Float32Array[]): void {
  pool.push(...buffers);
  // A few of the largest are enough for the rounds of one process.
  pool.sort((a, b) => b.length - a.length).splice(6);
}

export class StreamingScorer {
  private readonly heap: Float32Array;
  private readonly weights: Float64Array;
  private readonly rope: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly starts: Int32Array;
  private readonly tokens: number[][];
  private readonly finished: boolean[];
  private readonly logp: Float32Array[];
  /** KV slots per row: the prompt's (left-padded to the longest but its last token) and one per response token. */
  private readonly slots: number;
  private readonly promptSlots: number;
  private readonly chunk: number;
  private scratch: Float32Array = new Float32Array(0);
  private queued = 0;
  private started = false;
  private closed = false;
  private tail: Promise<void> = Promise.resolve();

  /**
   * Use `openStreamingScorer`. `rowPrompts[b]` indexes the prompt row b continues; `maxTokens` bounds
   * every row's tokens (as `generate` clamps it, to the context left after the longest prompt).
   */
  private constructor(
    private readonly runSync: DecodeScore,
    private readonly run: DecodeScoreAsync,
    private readonly model: Model,
    private readonly prompts: readonly (readonly number[])[],
    private readonly rowPrompts: readonly number[],
    readonly maxTokens: number,
    options: StreamingScorerOptions,
  ) {
    const { layers, width: D, contextLength: P } = model.config;
    this.chunk = options.chunk ?? 4;
    if (!Number.isInteger(this.chunk) || this.chunk < 1) throw new Error(`StreamingScorer: chunk must be a positive integer, got ${this.chunk}`);
    const R = rowPrompts.length;
    if (R === 0) throw new Error('StreamingScorer: no rows');
    rowPrompts.forEach((p, b) => {
      if (!Number.isInteger(p) || !prompts[p]) throw new Error(`StreamingScorer: row ${b} names prompt ${p} of ${prompts.length}`);
      if (prompts[p].length === 0) throw new Error(`StreamingScorer: prompt ${p} is empty`);
    });
    const longest = Math.max(...rowPrompts.map((p) => prompts[p].length));
    if (!Number.isInteger(maxTokens) || maxTokens < 0 || longest + maxTokens - 1 > P) {
      throw new Error(`StreamingScorer: prompts of up to ${longest} tokens and ${maxTokens} response tokens exceed the context of ${P}`);
    }
    ({ heap: this.heap, weights: this.weights } = copyWeights(model));
    this.rope = ropeTables(model.config);
    this.promptSlots = longest - 1;
    this.slots = this.promptSlots + Math.max(1, maxTokens);
    this.k = acquire(layers * R * this.slots * D);
    this.v = acquire(layers * R * this.slots * D);
    this.starts = Int32Array.from(rowPrompts, (p) => this.promptSlots + 1 - prompts[p].length);
    this.tokens = rowPrompts.map(() => []);
    this.finished = rowPrompts.map(() => false);
    this.logp = rowPrompts.map(() => new Float32Array(maxTokens));
  }

  /** A scorer for `rowPrompts.length` rows, or undefined when the addon lacks `decodeScoreAsync`, the backend is not WASM, or the model has no LM head. */
  static open(
    model: Model,
    prompts: readonly (readonly number[])[],
    rowPrompts: readonly number[],
    maxTokens: number,
    options: StreamingScorerOptions = {},
  ): StreamingScorer | undefined {
    const blas = nativeBlas();
    if (!blas?.decodeScoreAsync || !blas.decodeScore || tf.getBackend() !== 'wasm' || !model.params.lm_head) return undefined;
    return new StreamingScorer(blas.decodeScore.bind(blas), blas.decodeScoreAsync.bind(blas), model, prompts, rowPrompts, maxTokens, options);
  }

  /** Takes one decoding step's final tokens (per row, in the sampler's row order) and queues the calls they complete. */
  push(step: Pick<GenerationStep, 'tokens' | 'finished'>): void {
    if (this.closed) throw new Error('StreamingScorer: push after finish');
    if (step.tokens.length !== this.tokens.length) throw new Error(`StreamingScorer: a step of ${step.tokens.length} rows for ${this.tokens.length}`);
    step.tokens.forEach((fresh, b) => {
      const row = this.tokens[b];
      if (this.finished[b] && fresh.length > 0) throw new Error(`StreamingScorer: row ${b} got tokens after it ended`);
      if (row.length + fresh.length > this.maxTokens) throw new Error(`StreamingScorer: row ${b} passes its ${this.maxTokens} tokens`);
      row.push(...fresh);
      if (step.finished[b] !== null && step.finished[b] !== undefined) this.finished[b] = true;
    });
    let ready = Infinity;
    let longest = 0;
    this.tokens.forEach((row, b) => {
      if (!this.finished[b]) ready = Math.min(ready, row.length);
      longest = Math.max(longest, row.length);
    });
    if (!this.started) {
      this.started = true;
      this.then(() => this.prefill());
    }
    // After the last step (every row ended) the rest waits for `finish`, on the JS thread.
    if (ready === Infinity) return;
    while (this.queued + this.chunk <= ready) {
      this.queue(this.queued, this.queued + this.chunk);
      this.queued += this.chunk;
    }
  }

  /** Queues what is left and resolves, after every call, with each row's log-probabilities of its tokens. */
  async finish(): Promise<Float32Array[]> {
    if (this.closed) throw new Error('StreamingScorer: finish called twice');
    this.closed = true;
    try {
      if (!this.started) await this.prefill();
      await this.tail;
      const longest = Math.max(...this.tokens.map((row) => row.length));
      if (longest > this.queued) await this.score(this.queued, longest, true);
      return this.logp.map((logp, b) => logp.slice(0, this.tokens[b].length));
    } finally {
      release(this.k, this.v, this.scratch);
    }
  }

  /** Queues nothing more; the call in flight (if any) completes on its own and its buffers go back to the pool after it. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    this.tail.then(
      () => release(this.k, this.v, this.scratch),
      () => undefined,
    );
  }

  private then(next: () => Promise<void>): void {
    this.tail = this.tail.then(next);
    this.tail.catch(() => undefined);
  }

  private queue(from: number, to: number): void {
    this.then(() => this.score(from, to));
  }

  private dims(rows: number, T: number, past: number, S: number): Float64Array {
    const { layers, width: D, heads: H, mlpRatio, vocabSize: V, contextLength: P, normEps } = this.model.config;
    return Float64Array.of(layers, rows, T, past, S, D, H, mlpRatio * D, V, normEps, P, this.model.config.positions === 'learned' ? 1 : 0);
  }

  /** Scratch for a call of `rows × T` new tokens over S slots (blas.c's bound), grown between calls only. */
  private scratchFor(rows: number, T: number, S: number): Float32Array {
    const { width: D, mlpRatio, vocabSize: V } = this.model.config;
    const floats = rows * T * (5 * D + mlpRatio * D) + DECODE_WORKERS * S + DECODE_WORKERS * (SCORE_CHUNK * V + T * S);
    if (this.scratch.length < floats) {
      if (this.scratch.length > 0) release(this.scratch);
      this.scratch = acquire(floats);
    }
    return this.scratch;
  }

  /** Step 1: the distinct prompts but their last tokens, once each, copied into their rows' slots. */
  private async prefill(): Promise<void> {
    if (this.promptSlots === 0) return;
    const used = [...new Set(this.rowPrompts)];
    const { slots: Lq, ids, positions, starts } = promptPrefill(this.prompts, used);
    const Q = used.length;
    const { layers, width: D } = this.model.config;
    const cache = { k: new Float32Array(layers * Q * Lq * D), v: new Float32Array(layers * Q * Lq * D) };
    const targets = new Int32Array(Q * Lq).fill(-1);
    await this.run(this.heap, this.weights, cache.k, cache.v, this.scratchFor(Q, Lq, Lq), ids, positions, starts, this.rope, targets, new Float32Array(Q * Lq), this.dims(Q, Lq, 0, Lq));
    const shape = { layers, width: D, prompts: Q, promptSlots: Lq, rows: this.rowPrompts.length, slots: this.slots };
    this.rowPrompts.forEach((p, r) => copyPromptSlots(cache, { k: this.k, v: this.v }, shape, used.indexOf(p), r));
  }

  /** Step 2: response positions [from, to) of every row, at slots Lq + from.. after the prompt's (on the JS thread when `here`). */
  private async score(from: number, to: number, here = false): Promise<void> {
    const R = this.rowPrompts.length;
    const T = to - from;
    const ids = new Int32Array(R * T);
    const positions = new Int32Array(R * T);
    const targets = new Int32Array(R * T).fill(-1);
    this.rowPrompts.forEach((p, r) => {
      const prompt = this.prompts[p];
      const row = this.tokens[r];
      for (let j = 0; j < T; j++) {
        const t = from + j;
        // A row that ended before t runs a token there that nothing reads (target −1).
        positions[r * T + j] = prompt.length - 1 + t;
        if (t >= row.length) continue;
        ids[r * T + j] = t === 0 ? prompt[prompt.length - 1] : row[t - 1];
        targets[r * T + j] = row[t];
      }
    });
    const logp = new Float32Array(R * T);
    const S = this.slots;
    const past = this.promptSlots + from;
    const args = [this.heap, this.weights, this.k, this.v, this.scratchFor(R, T, S), ids, positions, this.starts, this.rope, targets, logp, this.dims(R, T, past, S)] as const;
    if (here) this.runSync(...args);
    else await this.run(...args);
    for (let r = 0; r < R; r++) {
      const n = Math.min(to, this.tokens[r].length) - from;
      if (n > 0) this.logp[r].set(logp.subarray(r * T, r * T + n), from);
    }
  }
}

/** The decoder's weights (blas.c's order) copied out of the WASM heap into one array, and their offsets there. */
function copyWeights(model: Model): { heap: Float32Array; weights: Float64Array } {
  const backend = tf.backend() as BackendWasm;
  const names = decoderWeightNames(model.config);
  const inHeap = new Float64Array(names.length);
  lookUpWeights(backend, model, names, inHeap, 'StreamingScorer');
  // A tensor named twice (rotary models pass tok_emb for pos_emb) is copied once.
  const offsets = new Map<string, number>();
  let size = 0;
  for (const name of names) {
    if (offsets.has(name)) continue;
    offsets.set(name, size);
    size += (model.params[name] as tf.Tensor).size;
  }
  const heap = new Float32Array(size);
  const source = heapF32(backend);
  names.forEach((name, i) => heap.set(source.subarray(inHeap[i], inHeap[i] + (model.params[name] as tf.Tensor).size), offsets.get(name) as number));
  return { heap, weights: Float64Array.from(names, (name) => offsets.get(name) as number) };
}
