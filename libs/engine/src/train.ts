/**
 * Training loops: causal LM on packed CPT rows (attention and loss stay inside each document) and SFT
 * (loss on assistant tokens only, per-category loss logged as JSONL lines).
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, OptimConfig, type OptimConfigInput } from './optim';
import { forwardHidden, lmLogits, type Model } from './model';
import { tokenNll } from './ops';
import { Rng } from './rng';
import type { ByteTokenizer, ChatMessage } from './tokenizer';

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
 * Causal LM loss `L = Σ_n w_n · (−log p(t_n | x_≤n)) / Σ_n w_n` over the B·T positions;
 * returns the scalar and the per-token NLL `[B·T]`.
 */
export function lmLoss(model: Model, batch: TokenBatch, dropoutSeed?: number): { loss: tf.Scalar; nll: tf.Tensor1D } {
  const hidden = forwardHidden(model, { ...batch, dropoutSeed });
  const nll = tokenNll(lmLogits(model, hidden), tf.tensor1d(batch.targets, 'int32'));
  const weights = tf.tensor1d(batch.weights);
  const total = batch.weights.reduce((a, b) => a + b, 0);
  return { loss: tf.div(tf.sum(tf.mul(nll, weights)), Math.max(total, 1)) as tf.Scalar, nll };
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
  readonly rng: Rng;

  constructor(
    readonly model: Model,
    optim: OptimConfigInput,
    seed: number,
  ) {
    this.optimizer = new AdamW(OptimConfig.parse(optim), model.params);
    this.rng = new Rng(seed);
  }

  get step(): number {
    return this.optimizer.step;
  }

  /**
   * One optimiser step on `loss(dropoutSeed)`; `inspect` sees the forward pass's tensors before they
   * are released (e.g. to read per-token losses).
   */
  trainStep(loss: (dropoutSeed: number) => tf.Scalar): StepResult {
    const dropoutSeed = this.rng.seed();
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

export interface CptOptions {
  steps: number;
  batchSize: number;
  onStep?: (result: StepResult) => void;
}

/** Causal-LM training on packed rows, rows drawn by the trainer's seeded generator. */
export function trainCpt(trainer: Trainer, rows: PackedRows, options: CptOptions): StepResult[] {
  const count = rows.tokens.length / rows.rowLength;
  const results: StepResult[] = [];
  for (let s = 0; s < options.steps; s++) {
    const pick = Array.from({ length: options.batchSize }, () => trainer.rng.int(count));
    const batch = cptBatch(rows, pick);
    const result = trainer.trainStep((seed) => lmLoss(trainer.model, batch, seed).loss);
    results.push(result);
    options.onStep?.(result);
  }
  return results;
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

/** An SFT batch: chat template, right padding, loss weight 1 on assistant tokens only. */
export function sftBatch(examples: SftExample[], tokenizer: ByteTokenizer, T: number): TokenBatch & { categories: string[] } {
  const B = examples.length;
  const ids = new Int32Array(B * T).fill(tokenizer.eos);
  const targets = new Int32Array(B * T).fill(tokenizer.eos);
  const weights = new Float32Array(B * T);
  examples.forEach((ex, b) => {
    const { ids: seq, trainMask } = tokenizer.encodeChat(ex.messages, false);
    const n = Math.min(seq.length - 1, T);
    for (let t = 0; t < n; t++) {
      ids[b * T + t] = seq[t];
      targets[b * T + t] = seq[t + 1];
      weights[b * T + t] = trainMask[t + 1];
    }
  });
  return { ids, targets, weights, batch: B, seq: T, categories: examples.map((e) => e.category) };
}

export interface SftOptions {
  steps: number;
  batchSize: number;
  seq: number;
  /** A line per category every `logEvery` steps. */
  logEvery: number;
  onLog?: (line: CategoryLossLine) => void;
  onStep?: (result: StepResult) => void;
}

/** SFT: loss on assistant tokens only; per-category mean loss reported every `logEvery` steps. */
export function trainSft(
  trainer: Trainer,
  tokenizer: ByteTokenizer,
  examples: SftExample[],
  options: SftOptions,
): { steps: StepResult[]; log: CategoryLossLine[] } {
  const sums = new Map<string, { nll: number; tokens: number }>();
  const log: CategoryLossLine[] = [];
  const steps: StepResult[] = [];
  for (let s = 0; s < options.steps; s++) {
    const picked = Array.from({ length: options.batchSize }, () => examples[trainer.rng.int(examples.length)]);
    const batch = sftBatch(picked, tokenizer, options.seq);
    const result = trainer.trainStep((seed) => {
      const { loss, nll } = lmLoss(trainer.model, batch, seed);
      const values = nll.dataSync();
      batch.categories.forEach((category, b) => {
        const acc = sums.get(category) ?? { nll: 0, tokens: 0 };
        for (let t = 0; t < batch.seq; t++) {
          const w = batch.weights[b * batch.seq + t];
          acc.nll += w * values[b * batch.seq + t];
          acc.tokens += w;
        }
        sums.set(category, acc);
      });
      return loss;
    });
    steps.push(result);
    options.onStep?.(result);
    if (result.step % options.logEvery === 0) {
      for (const [category, acc] of [...sums.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        if (acc.tokens === 0) continue;
        const line = { step: result.step, category, loss: acc.nll / acc.tokens, tokens: acc.tokens };
        log.push(line);
        options.onLog?.(line);
      }
      sums.clear();
    }
  }
  return { steps, log };
}
