/**
 * Reward-model training with the UFRM objective (`losses.ts`). N pairs (x, y_c, y_r); r(x, y) is the
 * value head on h, the final hidden state `[D]` of the last token of x·y.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UfrmWeights, type UfrmWeightsInput } from '@xyp/contracts';
import { forwardHidden, pickRows, runStepLoop, valueHead, type LoopControl, type Model, type StepResult, type Trainer } from '@xyp/engine';
import { bradleyTerryLoss, combineUfrmTerms, inverseRlLoss, rewardCenteringLoss, simcseLoss } from './losses';

export interface PreferencePair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
  /** The label's margin m (used by L_BT when `weights.margin` is on; 0 when absent). */
  margin?: number;
}

/**
 * A pair cut to fit `limit` tokens per sequence (prompt + the longer response), keeping the end of
 * each sequence, where the reward is read: the prompt loses its first tokens; a response longer
 * than the limit on its own keeps its last `limit` tokens and no prompt. Reward-model trainers
 * truncate the same way for long dialogues (the last turns decide the preference).
 */
export function fitPair(pair: PreferencePair, limit: number): PreferencePair {
  const longest = Math.max(pair.chosen.length, pair.rejected.length);
  if (pair.prompt.length + longest <= limit) return pair;
  if (longest >= limit) return { ...pair, prompt: [], chosen: pair.chosen.slice(-limit), rejected: pair.rejected.slice(-limit) };
  return { ...pair, prompt: pair.prompt.slice(pair.prompt.length - (limit - longest)) };
}

/**
 * Sequence representations h `[M, D]` and rewards r `[M]` of M right-padded sequences: h is the final
 * hidden state of each sequence's last token, or with the model's `pooling: 'mean'` the mean of its
 * tokens' final hidden states (padding excluded).
 */
export function rewardForward(model: Model, sequences: number[][], dropoutSeed?: number): { h: tf.Tensor2D; r: tf.Tensor1D } {
  const T = Math.max(...sequences.map((s) => s.length));
  if (T > model.config.contextLength) throw new Error(`sequence of ${T} exceeds the context of ${model.config.contextLength}`);
  const M = sequences.length;
  const ids = new Int32Array(M * T);
  sequences.forEach((s, b) => ids.set(s, b * T));
  const hidden = forwardHidden(model, { ids, batch: M, seq: T, dropoutSeed });
  const h = model.config.pooling === 'mean' ? meanRows(hidden, sequences.map((s) => s.length), T) : pickRows(hidden, Int32Array.from(sequences, (s, b) => b * T + s.length - 1));
  return { h, r: valueHead(model, h) };
}

/** Per sequence b, the mean of rows `b·T … b·T + length_b − 1` of `hidden` `[M·T, D]`: an `[M, M·T]` averaging matrix times `hidden`. */
function meanRows(hidden: tf.Tensor2D, lengths: readonly number[], T: number): tf.Tensor2D {
  const M = lengths.length;
  const weights = new Float32Array(M * M * T);
  lengths.forEach((length, b) => weights.fill(1 / length, b * M * T + b * T, b * M * T + b * T + length));
  return tf.matMul(tf.tensor2d(weights, [M, M * T]), hidden);
}

export interface UfrmTerms {
  loss: tf.Scalar;
  bt: tf.Scalar;
  irl: tf.Scalar;
  cl: tf.Scalar;
  /** `mean((r_c + r_r)²)`; computed whatever its weight. */
  center: tf.Scalar;
  /** Pairs with r(x, y_c) > r(x, y_r). */
  correct: number;
  /** Mean chosen and rejected reward of the batch. */
  chosenMean: number;
  rejectedMean: number;
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
  const margin = w.margin ? tf.tensor1d(pairs.map((p) => p.margin ?? 0)) : undefined;
  const bt = bradleyTerryLoss(rc, rr, margin);
  const irl = inverseRlLoss(rc, rr);
  const center = rewardCenteringLoss(rc, rr);
  let cl = tf.scalar(0);
  if (w.cl > 0) {
    const { h: h2 } = rewardForward(model, sequences, seeds?.[1]);
    cl = simcseLoss(h, h2, w.tau);
  }
  const loss = combineUfrmTerms({ bt, irl, cl, center }, w);
  const rewards = r.dataSync();
  let correct = 0;
  let chosenSum = 0;
  let rejectedSum = 0;
  for (let i = 0; i < N; i++) {
    if (rewards[i] > rewards[N + i]) correct += 1;
    chosenSum += rewards[i];
    rejectedSum += rewards[N + i];
  }
  return { loss, bt, irl, cl, center, correct, chosenMean: chosenSum / N, rejectedMean: rejectedSum / N };
}

/** Rewards of each pair's chosen and rejected sequence (no dropout), `batchSize` pairs per forward pass. */
export function pairRewards(model: Model, pairs: PreferencePair[], batchSize = 32): { chosen: number[]; rejected: number[] } {
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (let i = 0; i < pairs.length; i += batchSize) {
    const chunk = pairs.slice(i, i + batchSize);
    const r = tf.tidy(() => rewardForward(model, [...chunk.map((p) => [...p.prompt, ...p.chosen]), ...chunk.map((p) => [...p.prompt, ...p.rejected])]).r.dataSync());
    for (let j = 0; j < chunk.length; j++) {
      chosen.push(r[j]);
      rejected.push(r[chunk.length + j]);
    }
  }
  return { chosen, rejected };
}

/** Pairwise accuracy: the fraction of pairs whose chosen response scores higher (no dropout; a tie is not correct). */
export function pairwiseAccuracy(model: Model, pairs: PreferencePair[], batchSize = 32): number {
  const { chosen, rejected } = pairRewards(model, pairs, batchSize);
  let correct = 0;
  for (let i = 0; i < chosen.length; i++) if (chosen[i] > rejected[i]) correct += 1;
  return correct / pairs.length;
}

/** The loss terms and batch statistics of one training step, for the curves. */
export interface RewardStepTerms {
  step: number;
  loss: number;
  bt: number;
  irl: number;
  cl: number;
  center: number;
  /** Share of the batch's pairs ranked right (before the update). */
  batchAccuracy: number;
  chosenMean: number;
  rejectedMean: number;
}

export interface RewardTrainingOptions extends LoopControl {
  /** Steps to run now (a resumed trainer runs the steps it has left). */
  steps: number;
  batchSize: number;
  weights: UfrmWeightsInput;
  /** Called after every step with its terms (before the next step starts). */
  onTerms?: (terms: RewardStepTerms) => void | Promise<void>;
}

/**
 * Reward-model training: `steps` UFRM steps on minibatches drawn by the trainer's generator.
 * Step-wise (`runStepLoop` of `@xyp/engine`): cancel with `signal`, stop early with `stop`, progress
 * after every step, the event loop served between steps.
 */
export async function trainRewardModel(trainer: Trainer, pairs: PreferencePair[], options: RewardTrainingOptions): Promise<StepResult[]> {
  let last: Omit<RewardStepTerms, 'step' | 'loss'> | undefined;
  const onStep = options.onTerms
    ? async (result: StepResult) => {
        if (last) await options.onTerms?.({ step: result.step, loss: result.loss, ...last });
        await options.onStep?.(result);
      }
    : options.onStep;
  return runStepLoop(options.steps, { ...options, onStep }, trainer.step, () => {
    const batch = Array.from({ length: options.batchSize }, () => pairs[trainer.rng.nextInt(pairs.length)]);
    const result = trainer.trainStep((seed) => {
      const t = ufrmLoss(trainer.model, batch, options.weights, [seed, seed + 1]);
      if (options.onTerms) {
        const [bt, irl, cl, center] = [t.bt, t.irl, t.cl, t.center].map((x) => x.dataSync()[0]);
        last = { bt, irl, cl, center, batchAccuracy: t.correct / batch.length, chosenMean: t.chosenMean, rejectedMean: t.rejectedMean };
      }
      return t.loss;
    });
    const tokens = batch.reduce((sum, p) => sum + 2 * p.prompt.length + p.chosen.length + p.rejected.length, 0);
    return { result, tokens };
  });
}
