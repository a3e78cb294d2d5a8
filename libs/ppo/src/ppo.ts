/**
 * PPO with a KL penalty to a frozen reference policy. The policy is a model with an LM head and a
 * value head; the caller sets the KL coefficient β of every round.
 *
 * Shapes: R rollouts (prompts × n), padded length L, response positions masked by m `[R, L]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkRewardScores, type BatchReward } from '@xyp/contracts';
import { forwardHidden, generateAsync, lmLogits, runStepLoop, tokenNll, valueHead, type LoopControl, type Model, type Trainer } from '@xyp/engine';
import { nextSeed, shuffleInPlace } from '@xyp/random';
import { ppoAdvantages } from './advantages';
import { clippedPolicyLoss, clippedValueLoss } from './losses';

export const PpoConfig = z.object({
  /** KL coefficient β of this round. */
  klCoef: z.number().nonnegative(),
  gamma: z.number().min(0).max(1).default(1),
  lambda: z.number().min(0).max(1).default(0.95),
  clip: z.number().positive().default(0.2),
  valueClip: z.number().positive().default(0.2),
  valueCoef: z.number().nonnegative().default(0.5),
  epochs: z.number().int().positive().default(2),
  minibatches: z.number().int().positive().default(2),
  samplesPerPrompt: z.number().int().positive().default(4),
  temperature: z.number().positive().default(1),
  topP: z.number().positive().max(1).default(1),
  maxTokens: z.number().int().positive().default(16),
  eos: z.number().int().optional(),
});
export type PpoConfig = z.output<typeof PpoConfig>;
export type PpoConfigInput = z.input<typeof PpoConfig>;

/** A rollout to score: its prompt (index in the round's prompts, and tokens) and the sampled response tokens. */
export interface RolloutToScore {
  promptIndex: number;
  prompt: number[];
  response: number[];
}

/**
 * PPO's reward: asynchronous and batched (`BatchReward` of `@xyp/contracts`), one score per rollout of
 * a round, in order. A reward model in process (`textRewardScorer` of `@xyp/ufrm`) or behind
 * `RewardService.Score` (`rewardServiceScorer` of `@xyp/reward-serving`) scores texts; the caller that
 * holds the tokenizer turns rollouts into texts (`@xyp/local-engine` does).
 */
export type RewardFn = BatchReward<RolloutToScore>;

/** Cancel and reporting of a round: `signal` stops it within one decoding step or update. */
export type PpoRoundControl = Omit<LoopControl, 'stop'>;

export interface PpoRoundResult {
  meanReward: number;
  /** Mean over rollouts of Σ_t (log π(y_t) − log π_ref(y_t)), measured on the rollouts. */
  meanKl: number;
  policyLoss: number;
  valueLoss: number;
  rollouts: number;
}

/** Packed rollouts: prompt·response rows of L tokens `[R·L]`. */
export interface PpoRollouts {
  ids: Int32Array;
  targets: Int32Array;
  /** 1 where the target is a response token `[R·L]`. */
  mask: Float32Array;
  batch: number;
  seq: number;
}

/** Sequences prompt·response, right-padded; position t predicts token t+1, counted when that token is part of the response. */
export function packRollouts(prompts: number[][], samples: { prompt: number; tokens: number[] }[]): PpoRollouts {
  const seqs = samples.map((s) => [...prompts[s.prompt], ...s.tokens]);
  const L = Math.max(...seqs.map((s) => s.length));
  const R = seqs.length;
  const ids = new Int32Array(R * L);
  const targets = new Int32Array(R * L);
  const mask = new Float32Array(R * L);
  seqs.forEach((s, b) => {
    const start = prompts[samples[b].prompt].length;
    for (let t = 0; t < L; t++) {
      ids[b * L + t] = t < s.length ? s[t] : 0;
      if (t + 1 < s.length) {
        targets[b * L + t] = s[t + 1];
        mask[b * L + t] = t + 1 >= start ? 1 : 0;
      }
    }
  });
  return { ids, targets, mask, batch: R, seq: L };
}

/** Log-probabilities of the targets `[R·L]` and, with a value head, values `[R·L]`. */
export function scoreRollouts(model: Model, r: PpoRollouts, withValues: boolean): { logp: tf.Tensor1D; values?: tf.Tensor1D } {
  const hidden = forwardHidden(model, { ids: r.ids, batch: r.batch, seq: r.seq });
  const logp = tf.neg(tokenNll(lmLogits(model, hidden), tf.tensor1d(r.targets, 'int32')));
  return { logp, values: withValues ? valueHead(model, hidden) : undefined };
}

/** A minibatch of rollouts with what the rollout pass measured at the old policy, all `[R·L]`. */
export interface PpoMinibatch extends PpoRollouts {
  oldLogp: Float32Array;
  oldValues: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
}

/**
 * The PPO objective of one minibatch at the current policy (formulas in `losses.ts`):
 * `loss = policyLoss + c_v · valueLoss`, both means over the response tokens.
 */
export function ppoLoss(
  policy: Model,
  mb: PpoMinibatch,
  c: Pick<PpoConfig, 'clip' | 'valueClip' | 'valueCoef'>,
): { loss: tf.Scalar; policyLoss: tf.Scalar; valueLoss: tf.Scalar } {
  const { logp, values } = scoreRollouts(policy, mb, true);
  const pLoss = clippedPolicyLoss(logp, mb.oldLogp, mb.advantages, mb.mask, c.clip);
  const vLoss = clippedValueLoss(values as tf.Tensor1D, mb.oldValues, mb.returns, mb.mask, c.valueClip);
  return { loss: tf.add(pLoss, tf.mul(vLoss, c.valueCoef)) as tf.Scalar, policyLoss: pLoss, valueLoss: vLoss };
}

/**
 * One PPO round:
 *  1. sample `samplesPerPrompt` responses per prompt (temperature, top-p) and score them with `reward`,
 *     one batched call for the round;
 *  2. per-token reward `r_t = −β (log π_old(y_t) − log π_ref(y_t))`, plus the score on the last token;
 *  3. GAE: `δ_t = r_t + γV_{t+1} − V_t`, `A_t = δ_t + γλA_{t+1}`, returns `G_t = A_t + V_t`; A whitened
 *     (steps 2-3: `ppoAdvantages`);
 *  4. `epochs` passes over `minibatches` minibatches of (`ppoLoss`)
 *     `L = mean_t max(−A_t ρ_t, −A_t clip(ρ_t, 1±ε)) + c_v · ½ mean_t max((V_t − G_t)², (V_old,t + clip(V_t − V_old,t, ±ε_v) − G_t)²)`
 *     with `ρ_t = exp(log π(y_t) − log π_old(y_t))`, means over response tokens.
 *
 * Asynchronous and step-wise: sampling serves the event loop after every decoding step, the reward is
 * awaited, and the updates run on `runStepLoop` (progress after every update). An aborted `signal`
 * stops the round within one decoding step, the reward call, or one update, rejecting with its reason.
 */
export async function ppoRound(
  trainer: Trainer,
  reference: Model,
  prompts: number[][],
  reward: RewardFn,
  configInput: PpoConfigInput,
  control: PpoRoundControl = {},
): Promise<PpoRoundResult> {
  const c = PpoConfig.parse(configInput);
  const policy = trainer.model;
  const { signal } = control;
  const samples = (
    await generateAsync(policy, prompts, {
      n: c.samplesPerPrompt,
      temperature: c.temperature,
      topP: c.topP,
      maxTokens: c.maxTokens,
      eos: c.eos,
      seed: nextSeed(trainer.rng),
      signal,
    })
  ).filter((s) => s.tokens.length > 0);
  if (samples.length === 0) throw new Error('every rollout was empty');
  const toScore = samples.map((s) => ({ promptIndex: s.prompt, prompt: prompts[s.prompt], response: s.tokens }));
  const scores = checkRewardScores(await reward(toScore, { signal }), toScore.length, 'PPO reward');
  signal?.throwIfAborted();
  const r = packRollouts(prompts, samples);
  const { batch: R, seq: L, mask } = r;
  const [oldLogp, oldValues, refLogp] = tf.tidy(() => {
    const p = scoreRollouts(policy, r, true);
    const q = scoreRollouts(reference, r, false);
    return [p.logp.dataSync() as Float32Array, (p.values as tf.Tensor1D).dataSync() as Float32Array, q.logp.dataSync() as Float32Array];
  });
  const { advantages, returns, klSum } = ppoAdvantages({ oldLogp, refLogp, oldValues, mask, scores, batch: R, seq: L }, c);

  let policyLoss = 0;
  let valueLoss = 0;
  const order = Array.from({ length: R }, (_, i) => i);
  const size = Math.ceil(R / c.minibatches);
  const perEpoch = Math.ceil(R / size);
  const updates = await runStepLoop(c.epochs * perEpoch, control, trainer.step, (index) => {
    if (index % perEpoch === 0) shuffleInPlace(order, trainer.rng);
    const start = (index % perEpoch) * size;
    const rows = order.slice(start, start + size);
    const take = <T extends Float32Array | Int32Array>(src: T, make: (n: number) => T): T => {
      const out = make(rows.length * L);
      rows.forEach((row, i) => out.set(src.subarray(row * L, (row + 1) * L), i * L));
      return out;
    };
    const mb: PpoMinibatch = {
      ids: take(r.ids, (n) => new Int32Array(n)),
      targets: take(r.targets, (n) => new Int32Array(n)),
      mask: take(mask, (n) => new Float32Array(n)),
      batch: rows.length,
      seq: L,
      oldLogp: take(oldLogp, (n) => new Float32Array(n)),
      oldValues: take(oldValues, (n) => new Float32Array(n)),
      advantages: take(advantages, (n) => new Float32Array(n)),
      returns: take(returns, (n) => new Float32Array(n)),
    };
    const result = trainer.trainStep(() => {
      const terms = ppoLoss(policy, mb, c);
      policyLoss += terms.policyLoss.dataSync()[0];
      valueLoss += terms.valueLoss.dataSync()[0];
      return terms.loss;
    });
    return { result, tokens: rows.length * L };
  });
  return {
    meanReward: scores.reduce((a, b) => a + b, 0) / scores.length,
    meanKl: klSum / R,
    policyLoss: policyLoss / updates.length,
    valueLoss: valueLoss / updates.length,
    rollouts: R,
  };
}
