/**
 * PPO with a KL penalty to a frozen reference policy. The policy is a model with an LM head and a
 * value head; the caller sets the KL coefficient β of every round.
 *
 * Shapes: R rollouts (prompts × n), padded length L, response positions masked by m `[R, L]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { generate } from './generate';
import { forwardHidden, lmLogits, valueHead, type Model } from './model';
import { tokenNll } from './ops';
import type { Trainer } from './train';

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

export type RewardFn = (prompt: number[], response: number[]) => number;

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

/** What the advantage pass reads, all `[R·L]` over packed rollouts (`scores`: one per rollout). */
export interface AdvantageInput {
  oldLogp: Float32Array;
  refLogp: Float32Array;
  oldValues: Float32Array;
  mask: Float32Array;
  scores: number[];
  batch: number;
  seq: number;
}

/**
 * Per-token rewards with the KL penalty, GAE and whitening, over the response tokens of each
 * rollout (the positions where `mask` is 1, in order):
 *   `r_t = −β (log π_old(y_t) − log π_ref(y_t))`, plus the rollout's score on its last token;
 *   `δ_t = r_t + γV_{t+1} − V_t` (V past the last token is 0), `A_t = δ_t + γλA_{t+1}`, `G_t = A_t + V_t`;
 *   then A is whitened over all response tokens, `(A − mean) / (std + 1e-8)`, and 0 elsewhere.
 * `klSum` is `Σ (log π_old − log π_ref)` over every response token.
 */
export function ppoAdvantages(
  input: AdvantageInput,
  c: Pick<PpoConfig, 'klCoef' | 'gamma' | 'lambda'>,
): { advantages: Float32Array; returns: Float32Array; klSum: number } {
  const { batch: R, seq: L, mask, oldLogp, refLogp, oldValues, scores } = input;
  const advantages = new Float32Array(R * L);
  const returns = new Float32Array(R * L);
  let klSum = 0;
  for (let b = 0; b < R; b++) {
    const positions: number[] = [];
    for (let t = 0; t < L; t++) if (mask[b * L + t] === 1) positions.push(b * L + t);
    const rewards = positions.map((n) => -c.klCoef * (oldLogp[n] - refLogp[n]));
    for (const n of positions) klSum += oldLogp[n] - refLogp[n];
    rewards[rewards.length - 1] += scores[b];
    let next = 0;
    let gae = 0;
    for (let i = positions.length - 1; i >= 0; i--) {
      const n = positions[i];
      const delta = rewards[i] + c.gamma * next - oldValues[n];
      gae = delta + c.gamma * c.lambda * gae;
      advantages[n] = gae;
      returns[n] = gae + oldValues[n];
      next = oldValues[n];
    }
  }
  let count = 0;
  let mean = 0;
  for (let n = 0; n < R * L; n++) {
    if (!mask[n]) continue;
    mean += advantages[n];
    count += 1;
  }
  mean /= count;
  let variance = 0;
  for (let n = 0; n < R * L; n++) if (mask[n]) variance += (advantages[n] - mean) ** 2;
  const std = Math.sqrt(variance / count) + 1e-8;
  for (let n = 0; n < R * L; n++) advantages[n] = mask[n] ? (advantages[n] - mean) / std : 0;
  return { advantages, returns, klSum };
}

/** A minibatch of rollouts with what the rollout pass measured at the old policy, all `[R·L]`. */
export interface PpoMinibatch extends PpoRollouts {
  oldLogp: Float32Array;
  oldValues: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
}

/**
 * The PPO objective of one minibatch, over its response tokens (mask m, M = Σm):
 *   `ρ_t = exp(log π(y_t) − log π_old(y_t))`,
 *   `policyLoss = Σ_t m_t max(−A_t ρ_t, −A_t clip(ρ_t, 1 − ε, 1 + ε)) / M`,
 *   `valueLoss = ½ Σ_t m_t max((V_t − G_t)², (V_old,t + clip(V_t − V_old,t, ±ε_v) − G_t)²) / M`,
 *   `loss = policyLoss + c_v · valueLoss`.
 */
export function ppoLoss(
  policy: Model,
  mb: PpoMinibatch,
  c: Pick<PpoConfig, 'clip' | 'valueClip' | 'valueCoef'>,
): { loss: tf.Scalar; policyLoss: tf.Scalar; valueLoss: tf.Scalar } {
  const tokens = mb.mask.reduce((a, b) => a + b, 0);
  const { logp, values } = scoreRollouts(policy, mb, true);
  const m = tf.tensor1d(mb.mask);
  const adv = tf.tensor1d(mb.advantages);
  const ratio = tf.exp(tf.sub(logp, tf.tensor1d(mb.oldLogp)));
  const pg = tf.maximum(tf.mul(tf.neg(adv), ratio), tf.mul(tf.neg(adv), tf.clipByValue(ratio, 1 - c.clip, 1 + c.clip)));
  const pLoss = tf.div(tf.sum(tf.mul(pg, m)), tokens) as tf.Scalar;
  const oldV = tf.tensor1d(mb.oldValues);
  const ret = tf.tensor1d(mb.returns);
  const v = values as tf.Tensor1D;
  const vClipped = tf.add(oldV, tf.clipByValue(tf.sub(v, oldV), -c.valueClip, c.valueClip));
  const vErr = tf.maximum(tf.square(tf.sub(v, ret)), tf.square(tf.sub(vClipped, ret)));
  const vLoss = tf.mul(tf.div(tf.sum(tf.mul(vErr, m)), tokens), 0.5) as tf.Scalar;
  return { loss: tf.add(pLoss, tf.mul(vLoss, c.valueCoef)) as tf.Scalar, policyLoss: pLoss, valueLoss: vLoss };
}

/**
 * One PPO round:
 *  1. sample `samplesPerPrompt` responses per prompt (temperature, top-p) and score them with `reward`;
 *  2. per-token reward `r_t = −β (log π_old(y_t) − log π_ref(y_t))`, plus the score on the last token;
 *  3. GAE: `δ_t = r_t + γV_{t+1} − V_t`, `A_t = δ_t + γλA_{t+1}`, returns `G_t = A_t + V_t`; A whitened
 *     (steps 2-3: `ppoAdvantages`);
 *  4. `epochs` passes over `minibatches` minibatches of (`ppoLoss`)
 *     `L = mean_t max(−A_t ρ_t, −A_t clip(ρ_t, 1±ε)) + c_v · ½ mean_t max((V_t − G_t)², (V_old,t + clip(V_t − V_old,t, ±ε_v) − G_t)²)`
 *     with `ρ_t = exp(log π(y_t) − log π_old(y_t))`, means over response tokens.
 */
export function ppoRound(trainer: Trainer, reference: Model, prompts: number[][], reward: RewardFn, configInput: PpoConfigInput): PpoRoundResult {
  const c = PpoConfig.parse(configInput);
  const policy = trainer.model;
  const samples = generate(policy, prompts, {
    n: c.samplesPerPrompt,
    temperature: c.temperature,
    topP: c.topP,
    maxTokens: c.maxTokens,
    eos: c.eos,
    seed: trainer.rng.seed(),
  }).filter((s) => s.tokens.length > 0);
  if (samples.length === 0) throw new Error('every rollout was empty');
  const scores = samples.map((s) => reward(prompts[s.prompt], s.tokens));
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
  let updates = 0;
  const order = Array.from({ length: R }, (_, i) => i);
  const size = Math.ceil(R / c.minibatches);
  for (let epoch = 0; epoch < c.epochs; epoch++) {
    trainer.rng.shuffle(order);
    for (let start = 0; start < R; start += size) {
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
      let pl = 0;
      let vl = 0;
      trainer.trainStep(() => {
        const terms = ppoLoss(policy, mb, c);
        pl = terms.policyLoss.dataSync()[0];
        vl = terms.valueLoss.dataSync()[0];
        return terms.loss;
      });
      policyLoss += pl;
      valueLoss += vl;
      updates += 1;
    }
  }
  return {
    meanReward: scores.reduce((a, b) => a + b, 0) / scores.length,
    meanKl: klSum / R,
    policyLoss: policyLoss / updates,
    valueLoss: valueLoss / updates,
    rollouts: R,
  };
}
