/**
 * Training loops: causal LM on packed CPT rows (attention and loss stay inside each document) and SFT
 * (loss on assistant tokens only, per-category loss logged as JSONL lines).
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, OptimConfig, type OptimConfigInput } from './optim';
import { forwardHidden, lmLogits, type Model } from './model';
import { SplitMix32, nextSeed } from '@xyp/random';
import { tokenNll } from './ops';
import type { ByteTokenizer, ChatMessage } from './tokenizer';
import { runStepLoop, type LoopControl } from './step-loop';

/** A batch of B rows of T tokens, flattened `[B·T]`. */
export interface TokenBatch {
  ids: Int32Array;
  /** Next token of each position `[B·T]`. */
  targets: Int32Array;
  /** Loss weight of each position `[B·T]` (1 counted, 0 ignored). */
  weights: Float32Array;
  batch: number;
  seq: number;
  positions?: Int32Array;
  segments?: Int32Array;
}

/**
 * Token-level cross-entropy with loss weights, over N positions:
 *   `ℓ_n = −log softmax(z_n)[t_n]`, logits z `[N, V]`, targets t `[N]`;
 *   `L = Σ_n w_n·ℓ_n / max(Σ_n w_n, 1)`, weights w `[N]`.
 * With 0/1 weights L is the mean NLL over the counted positions (CPT: targets in the same document as
 * their input; SFT: assistant tokens). Returns L and the per-token NLL ℓ `[N]`.
 */
export function weightedTokenLoss(logits: tf.Tensor2D, targets: Int32Array, weights: Float32Array): { loss: tf.Scalar; nll: tf.Tensor1D } {
  const nll = tokenNll(logits, tf.tensor1d(targets, 'int32'));
  const total = weights.reduce((a, b) => a + b, 0);
  return { loss: tf.div(tf.sum(tf.mul(nll, tf.tensor1d(weights))), Math.max(total, 1)) as tf.Scalar, nll };
}

/**
 * Causal LM loss of a batch (`weightedTokenLoss` on the LM logits `[B·T, V]` of its B·T positions);
 * returns the scalar and the per-token NLL `[B·T]`.
 */
export function lmLoss(model: Model, batch: TokenBatch, dropoutSeed?: number): { loss: tf.Scalar; nll: tf.Tensor1D } {
  const hidden = forwardHidden(model, { ...batch, dropoutSeed });
  return weightedTokenLoss(lmLogits(model, hidden), batch.targets, batch.weights);
}

export interface StepResult {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
}

/**
 * Owns a model's optimiser state and the random stream of a run (data order, dropout seeds), so that a
 * checkpoint of both resumes bit-for-bit.
 */
export class Trainer {
  readonly optimizer: AdamW;
  /** Data order, dropout seeds and sampling seeds of the run; its `state` is checkpointed. */
  readonly rng: SplitMix32;

  constructor(
    readonly model: Model,
    optim: OptimConfigInput,
    seed: number,
  ) {
    this.optimizer = new AdamW(OptimConfig.parse(optim), model.params);
    this.rng = new SplitMix32(seed);
  }

  get step(): number {
    return this.optimizer.step;
  }

  /**
   * One optimiser step on `loss(dropoutSeed)`; `inspect` sees the forward pass's tensors before they
   * are released (e.g. to read per-token losses).
   */
  trainStep(loss: (dropoutSeed: number) => tf.Scalar): StepResult {
    const dropoutSeed = nextSeed(this.rng);
    const vars = Object.values(this.model.params).filter((v) => v.trainable);
    const byVarName = new Map(Object.entries(this.model.params).map(([name, v]) => [v.name, name]));
    const { value, grads } = tf.variableGrads(() => loss(dropoutSeed), vars);
    const named: Record<string, tf.Tensor> = {};
    for (const [varName, g] of Object.entries(grads)) named[byVarName.get(varName) as string] = g;
    const lossValue = value.dataSync()[0];
    const { gradNorm, lr } = this.optimizer.apply(named);
    value.dispose();
    for (const g of Object.values(grads)) g.dispose();
    return { step: this.step, loss: lossValue, gradNorm, lr };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/** Packed CPT rows: `rows` rows of `rowLength = T + 1` tokens with the document id of every token. */
export interface PackedRows {
  rowLength: number;
  tokens: Int32Array;
  docIds: Int32Array;
}

/**
 * A CPT batch from packed rows: inputs are tokens 0..T−1 of each row, targets 1..T; a target counts
 * only when it belongs to the same document as its input, positions restart at each document, and
 * `segments` keeps attention inside documents.
 */
export function cptBatch(rows: PackedRows, rowIndices: number[]): TokenBatch {
  const T = rows.rowLength - 1;
  const B = rowIndices.length;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const weights = new Float32Array(B * T);
  const positions = new Int32Array(B * T);
  const segments = new Int32Array(B * T);
  rowIndices.forEach((r, b) => {
    const base = r * rows.rowLength;
    let pos = 0;
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      if (t > 0 && rows.docIds[base + t] !== rows.docIds[base + t - 1]) pos = 0;
      ids[n] = rows.tokens[base + t];
      targets[n] = rows.tokens[base + t + 1];
      weights[n] = rows.docIds[base + t] === rows.docIds[base + t + 1] ? 1 : 0;
      positions[n] = pos++;
      segments[n] = rows.docIds[base + t];
    }
  });
  return { ids, targets, weights, batch: B, seq: T, positions, segments };
}

/** Packs documents end to end into rows of `T + 1` tokens (the last row is padded with a document of its own). */
export function packDocuments(docs: number[][], T: number, padId: number): PackedRows {
  const tokens: number[] = [];
  const docIds: number[] = [];
  docs.forEach((doc, d) => {
    for (const t of doc) {
      tokens.push(t);
      docIds.push(d);
    }
  });
  const rowLength = T + 1;
  while (tokens.length % rowLength !== 0 || tokens.length === 0) {
    tokens.push(padId);
    docIds.push(-1 - (tokens.length % rowLength));
  }
  return { rowLength, tokens: Int32Array.from(tokens), docIds: Int32Array.from(docIds) };
}

export interface CptOptions extends LoopControl {
  /** Steps to run now (a resumed trainer runs the steps it has left). */
  steps: number;
  batchSize: number;
}

/**
 * Causal-LM training on packed rows, rows drawn by the trainer's seeded generator. Step-wise
 * (`runStepLoop`): cancel with `signal` (rejects before the next step), stop early with `stop`
 * (returns the steps done), progress after every step, the event loop served between steps.
 */
export async function trainCpt(trainer: Trainer, rows: PackedRows, options: CptOptions): Promise<StepResult[]> {
  const count = rows.tokens.length / rows.rowLength;
  return runStepLoop(options.steps, options, trainer.step, () => {
    const pick = Array.from({ length: options.batchSize }, () => trainer.rng.nextInt(count));
    const batch = cptBatch(rows, pick);
    const result = trainer.trainStep((seed) => lmLoss(trainer.model, batch, seed).loss);
    return { result, tokens: batch.batch * batch.seq };
  });
}

export interface SftExample {
  category: string;
  messages: ChatMessage[];
}

/** One line of the per-category SFT log. */
export interface CategoryLossLine {
  step: number;
  category: string;
  /** Mean NLL per assistant token since the previous line of this category. */
  loss: number;
  tokens: number;
}

/**
 * An SFT batch: chat template, right padding, loss weight 1 on assistant tokens only. A conversation
 * longer than the row (`T + 1` tokens) keeps its last `T + 1`: the start of the prompt is cut, so the
 * final assistant turn — what SFT learns from — is trained even after a long prompt (a document to
 * summarise, a long dialogue).
 */
export function sftBatch(examples: SftExample[], tokenizer: ByteTokenizer, T: number): TokenBatch & { categories: string[] } {
  const B = examples.length;
  const ids = new Int32Array(B * T).fill(tokenizer.eosId);
  const targets = new Int32Array(B * T).fill(tokenizer.eosId);
  const weights = new Float32Array(B * T);
  examples.forEach((ex, b) => {
    const { ids: seq, trainMask } = tokenizer.encodeChat(ex.messages, false);
    const start = Math.max(0, seq.length - 1 - T);
    const n = Math.min(seq.length - 1, T);
    for (let t = 0; t < n; t++) {
      ids[b * T + t] = seq[start + t];
      targets[b * T + t] = seq[start + t + 1];
      weights[b * T + t] = trainMask[start + t + 1];
    }
  });
  return { ids, targets, weights, batch: B, seq: T, categories: examples.map((e) => e.category) };
}

/**
 * Per-category NLL sums since each category's last log line: the part of an SFT run's state that is not
 * in the trainer. A caller that checkpoints mid-run saves it and passes it back on resume.
 */
export type SftLogState = Record<string, { nll: number; tokens: number }>;

/**
 * Adds row b's counted positions of a batch to the sums of `categories[b]`: `nll += Σ_t w_t·ℓ_t`,
 * `tokens += Σ_t w_t` (`nll` the per-position NLL `[B·T]` of the batch, `w` its loss weights).
 */
export function addCategoryNll(sums: SftLogState, categories: readonly string[], batch: Pick<TokenBatch, 'weights' | 'seq'>, nll: ArrayLike<number>): void {
  const T = batch.seq;
  categories.forEach((category, b) => {
    const acc = sums[category] ?? { nll: 0, tokens: 0 };
    for (let t = 0; t < T; t++) {
      const w = batch.weights[b * T + t];
      acc.nll += w * nll[b * T + t];
      acc.tokens += w;
    }
    sums[category] = acc;
  });
}

/** Mean NLL per counted position of every category with counted positions, sorted by category. */
export function categoryMeans(sums: Readonly<SftLogState>): { category: string; loss: number; tokens: number }[] {
  return Object.entries(sums)
    .filter(([, a]) => a.tokens > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([category, a]) => ({ category, loss: a.nll / a.tokens, tokens: a.tokens }));
}

export interface SftOptions extends LoopControl {
  /** Steps to run now (a resumed trainer runs the steps it has left). */
  steps: number;
  batchSize: number;
  seq: number;
  /** A line per category every `logEvery` steps (of the trainer's step count). */
  logEvery: number;
  onLog?: (line: CategoryLossLine) => void;
  /** Sums carried over from before a resume; updated in place as the loop runs. */
  logState?: SftLogState;
}

/**
 * SFT: loss on assistant tokens only; per-category mean loss reported every `logEvery` steps.
 * Step-wise like `trainCpt` (cancel, stop, progress, the event loop served between steps).
 */
export async function trainSft(
  trainer: Trainer,
  tokenizer: ByteTokenizer,
  examples: SftExample[],
  options: SftOptions,
): Promise<{ steps: StepResult[]; log: CategoryLossLine[] }> {
  const sums = options.logState ?? {};
  const log: CategoryLossLine[] = [];
  const steps = await runStepLoop(options.steps, options, trainer.step, () => {
    const picked = Array.from({ length: options.batchSize }, () => examples[trainer.rng.nextInt(examples.length)]);
    const batch = sftBatch(picked, tokenizer, options.seq);
    const result = trainer.trainStep((seed) => {
      const { loss, nll } = lmLoss(trainer.model, batch, seed);
      addCategoryNll(sums, batch.categories, batch, nll.dataSync());
      return loss;
    });
    if (result.step % options.logEvery === 0) {
      for (const mean of categoryMeans(sums)) {
        const line = { step: result.step, ...mean };
        log.push(line);
        options.onLog?.(line);
      }
      for (const category of Object.keys(sums)) delete sums[category];
    }
    return { result, tokens: batch.batch * batch.seq };
  });
  return { steps, log };
}

/**
 * Per-position NLL `[B·T]` of a batch under the model, without gradients or dropout (evaluation:
 * validation loss per category, perplexity). Weight it with `batch.weights` to count only the
 * positions that count.
 */
export function batchNll(model: Model, batch: TokenBatch): Float32Array<ArrayBufferLike> {
  let out: Float32Array<ArrayBufferLike> = new Float32Array(0);
  tf.tidy(() => {
    out = lmLoss(model, batch).nll.dataSync() as Float32Array;
  });
  return out;
}
