/**
 * Reward-model training with the UFRM objective (`losses.ts`). N pairs (x, y_c, y_r); r(x, y) is the
 * value head on h, the final hidden state `[D]` of the last token of x·y.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UfrmWeights, type UfrmWeightsInput } from '@xyp/contracts';
import { forwardHidden, pickRows, runStepLoop, valueHead, type LoopControl, type Model, type StepResult, type Trainer } from '@xyp/engine';
import { bradleyTerryLoss, combineUfrmTerms, inverseRlLoss, simcseLoss } from './losses';

export interface PreferencePair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

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

export interface UfrmTerms {
  loss: tf.Scalar;
  bt: tf.Scalar;
  irl: tf.Scalar;
  cl: tf.Scalar;
  /** Pairs with r(x, y_c) > r(x, y_r). */
  correct: number;
}

/**
 * The UFRM loss of N pairs on `model` (formulas in `losses.ts`): the 2N sequences x·y_c then x·y_r
 * go through the model once (dropout seed `seeds[0]`) for the rewards and h; with `w_cl > 0` a second
 * time (seed `seeds[1]`) for h', and L_CL is the 2N-way SimCSE loss of h against h'.
 */
export function ufrmLoss(model: Model, pairs: PreferencePair[], weightsInput: UfrmWeightsInput, seeds: [number, number] | undefined): UfrmTerms {
  const w = UfrmWeights.parse(weightsInput);
  const N = pairs.length;
  const sequences = [...pairs.map((p) => [...p.prompt, ...p.chosen]), ...pairs.map((p) => [...p.prompt, ...p.rejected])];
  const { h, r } = rewardForward(model, sequences, seeds?.[0]);
  const rc = tf.slice(r, 0, N);
  const rr = tf.slice(r, N, N);
  const bt = bradleyTerryLoss(rc, rr);
  const irl = inverseRlLoss(rc, rr);
  let cl = tf.scalar(0);
  if (w.cl > 0) {
    const { h: h2 } = rewardForward(model, sequences, seeds?.[1]);
    cl = simcseLoss(h, h2, w.tau);
  }
  const loss = combineUfrmTerms({ bt, irl, cl }, w);
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

export interface RewardTrainingOptions extends LoopControl {
  /** Steps to run now (a resumed trainer runs the steps it has left). */
  steps: number;
  batchSize: number;
  weights: UfrmWeightsInput;
}

/**
 * Reward-model training: `steps` UFRM steps on minibatches drawn by the trainer's generator.
 * Step-wise (`runStepLoop` of `@xyp/engine`): cancel with `signal`, stop early with `stop`, progress
 * after every step, the event loop served between steps.
 */
export async function trainRewardModel(trainer: Trainer, pairs: PreferencePair[], options: RewardTrainingOptions): Promise<StepResult[]> {
  return runStepLoop(options.steps, options, trainer.step, () => {
    const batch = Array.from({ length: options.batchSize }, () => pairs[trainer.rng.nextInt(pairs.length)]);
    const result = trainer.trainStep((seed) => ufrmLoss(trainer.model, batch, options.weights, [seed, seed + 1]).loss);
    const tokens = batch.reduce((sum, p) => sum + 2 * p.prompt.length + p.chosen.length + p.rejected.length, 0);
    return { result, tokens };
  });
}
