/**
 * Reward model training with the UFRM objective: Bradley-Terry, inverse-RL and SimCSE contrastive
 * terms, each weighted by config. N pairs (x, y_c, y_r); r(x, y) is the value head on h, the final
 * hidden state `[D]` of the last token of x·y.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { forwardHidden, pickRows, valueHead, type Model } from './model';
import { linear, tokenNll } from './ops';
import type { Trainer, StepResult } from './train';

export interface PreferencePair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

export const UfrmWeights = z.object({
  bt: z.number().nonnegative().default(1),
  irl: z.number().nonnegative().default(0),
  cl: z.number().nonnegative().default(0),
  /** SimCSE temperature τ. */
  tau: z.number().positive().default(0.05),
});
export type UfrmWeights = z.output<typeof UfrmWeights>;
export type UfrmWeightsInput = z.input<typeof UfrmWeights>;

/** Sequence representations h `[M, D]` and rewards r `[M]` of M right-padded sequences. */
export function rewardForward(model: Model, sequences: number[][], dropoutSeed?: number): { h: tf.Tensor2D; r: tf.Tensor1D } {
  const T = Math.max(...sequences.map((s) => s.length));
  if (T > model.config.contextLength) throw new Error(`sequence of ${T} exceeds the context of ${model.config.contextLength}`);
  const M = sequences.length;
  const ids = new Int32Array(M * T);
  sequences.forEach((s, b) => ids.set(s, b * T));
  const hidden = forwardHidden(model, { ids, batch: M, seq: T, dropoutSeed });
  const last = Int32Array.from(sequences, (s, b) => b * T + s.length - 1);
  const h = pickRows(hidden, last);
  return { h, r: valueHead(model, h) };
}

/** `log σ(x) = −softplus(−x)`. */
function logSigmoid(x: tf.Tensor1D): tf.Tensor1D {
  return tf.neg(tf.softplus(tf.neg(x)));
}

export interface UfrmTerms {
  loss: tf.Scalar;
  bt: tf.Scalar;
  irl: tf.Scalar;
  cl: tf.Scalar;
  /** Pairs with r(x, y_c) > r(x, y_r). */
  correct: number;
}

/**
 * UFRM loss `L = w_bt·L_BT + w_irl·L_IRL + w_cl·L_CL` over N pairs:
 *   L_BT  = −(1/N) Σ log σ(r(x,y_c) − r(x,y_r))
 *   L_IRL = −(1/N) Σ [log σ(r(x,y_c)) + log σ(−r(x,y_r))]
 *   L_CL  = −(1/2N) Σ_i log( exp(sim(h_i, h'_i)/τ) / Σ_j exp(sim(h_i, h'_j)/τ) )
 * where i, j run over all 2N chosen and rejected responses, h `[2N, D]` is the representation that
 * feeds the value head, h' the same batch through a second pass with independent dropout (seed2), and
 * sim the cosine: `S = (h/‖h‖)·(h'/‖h'‖)ᵀ / τ` `[2N, 2N]`, so L_CL is the cross-entropy of S's rows
 * against their diagonal.
 */
export function ufrmLoss(model: Model, pairs: PreferencePair[], weightsInput: UfrmWeightsInput, seeds: [number, number] | undefined): UfrmTerms {
  const w = UfrmWeights.parse(weightsInput);
  const N = pairs.length;
  const sequences = [...pairs.map((p) => [...p.prompt, ...p.chosen]), ...pairs.map((p) => [...p.prompt, ...p.rejected])];
  const { h, r } = rewardForward(model, sequences, seeds?.[0]);
  const rc = tf.slice(r, 0, N);
  const rr = tf.slice(r, N, N);
  const bt = tf.neg(tf.mean(logSigmoid(tf.sub(rc, rr)))) as tf.Scalar;
  const irl = tf.neg(tf.mean(tf.add(logSigmoid(rc), logSigmoid(tf.neg(rr))))) as tf.Scalar;
  let cl = tf.scalar(0);
  if (w.cl > 0) {
    const { h: h2 } = rewardForward(model, sequences, seeds?.[1]);
    const unit = (x: tf.Tensor2D): tf.Tensor2D => tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)));
    const sim = tf.div(linear(unit(h), tf.transpose(unit(h2))), w.tau) as tf.Tensor2D;
    cl = tf.mean(tokenNll(sim, tf.range(0, 2 * N, 1, 'int32') as tf.Tensor1D)) as tf.Scalar;
  }
  const loss = tf.addN([tf.mul(bt, w.bt), tf.mul(irl, w.irl), tf.mul(cl, w.cl)]) as tf.Scalar;
  const diff = tf.sub(rc, rr).dataSync();
  let correct = 0;
  for (const d of diff) if (d > 0) correct += 1;
  return { loss, bt, irl, cl, correct };
}

/** Pairwise accuracy: the fraction of pairs whose chosen response scores higher (no dropout). */
export function pairwiseAccuracy(model: Model, pairs: PreferencePair[], batchSize = 32): number {
  let correct = 0;
  for (let i = 0; i < pairs.length; i += batchSize) {
    const chunk = pairs.slice(i, i + batchSize);
    const diff = tf.tidy(() => {
      const { r } = rewardForward(model, [...chunk.map((p) => [...p.prompt, ...p.chosen]), ...chunk.map((p) => [...p.prompt, ...p.rejected])]);
      return tf.sub(tf.slice(r, 0, chunk.length), tf.slice(r, chunk.length, chunk.length)).dataSync();
    });
    for (const d of diff) if (d > 0) correct += 1;
  }
  return correct / pairs.length;
}

/** Reward-model training: `steps` UFRM steps on minibatches drawn by the trainer's generator. */
export function trainRewardModel(
  trainer: Trainer,
  pairs: PreferencePair[],
  options: { steps: number; batchSize: number; weights: UfrmWeightsInput; onStep?: (r: StepResult) => void },
): StepResult[] {
  const results: StepResult[] = [];
  for (let s = 0; s < options.steps; s++) {
    const batch = Array.from({ length: options.batchSize }, () => pairs[trainer.rng.int(pairs.length)]);
    const result = trainer.trainStep((seed) => ufrmLoss(trainer.model, batch, options.weights, [seed, seed + 1]).loss);
    results.push(result);
    options.onStep?.(result);
  }
  return results;
}
