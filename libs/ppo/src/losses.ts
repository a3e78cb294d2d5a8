/**
 * The clipped PPO losses (Schulman et al., "Proximal Policy Optimization Algorithms", 2017, eq. 7;
 * value clipping as in OpenAI baselines' `ppo2` and OpenRLHF's `ValueLoss`), each a mean over the
 * response tokens of a minibatch, and the per-update statistics read off the same tensors (clip
 * fraction, token entropy, KL to the reference, approximate KL to the old policy): every input is
 * `[R·L]` over packed rollouts, mask m is 1 on response tokens, M = Σ m.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KlEstimator } from './kl';

/** `(1/M) Σ_t m_t x_t`. */
export function maskedMean(x: tf.Tensor1D, mask: Float32Array | tf.Tensor1D): tf.Scalar {
  const m = mask instanceof Float32Array ? tf.tensor1d(mask) : mask;
  return tf.div(tf.sum(tf.mul(x, m)), tf.sum(m)) as tf.Scalar;
}

/**
 * `ρ_t = exp(log π(y_t) − log π_old(y_t))`,
 * `policyLoss = (1/M) Σ_t m_t · max(−A_t·ρ_t, −A_t·clip(ρ_t, 1 − ε, 1 + ε))`;
 * `clipFraction = (1/M) Σ_t m_t · [−A_t·clip(ρ_t) > −A_t·ρ_t]`: the share of response tokens on which
 * the clipped term is the one taken (its gradient is zero there), as OpenRLHF's `PolicyLoss`
 * (`surr2 < surr1`) and TRL's `pg_clipfrac` count it. A token with ρ outside 1 ± ε whose unclipped
 * term is the larger (pessimistic) one is not counted.
 */
export function clippedPolicyTerms(
  logp: tf.Tensor1D,
  oldLogp: Float32Array,
  advantages: Float32Array,
  mask: Float32Array,
  clip: number,
): { loss: tf.Scalar; clipFraction: tf.Scalar; ratio: tf.Tensor1D; logRatio: tf.Tensor1D } {
  const m = tf.tensor1d(mask);
  const logRatio = tf.sub(logp, tf.tensor1d(oldLogp)) as tf.Tensor1D;
  const ratio = tf.exp(logRatio) as tf.Tensor1D;
  const negAdv = tf.neg(tf.tensor1d(advantages));
  const unclipped = tf.mul(negAdv, ratio);
  const clipped = tf.mul(negAdv, tf.clipByValue(ratio, 1 - clip, 1 + clip));
  const perToken = tf.maximum(unclipped, clipped) as tf.Tensor1D;
  const clipFraction = maskedMean(tf.cast(tf.greater(clipped, unclipped), 'float32') as tf.Tensor1D, m);
  return { loss: maskedMean(perToken, m), clipFraction, ratio, logRatio };
}

/** The policy loss of `clippedPolicyTerms` alone. */
export function clippedPolicyLoss(logp: tf.Tensor1D, oldLogp: Float32Array, advantages: Float32Array, mask: Float32Array, clip: number): tf.Scalar {
  return clippedPolicyTerms(logp, oldLogp, advantages, mask, clip).loss;
}

/**
 * `V^clip_t = V_old,t + clip(V_t − V_old,t, −ε_v, ε_v)`,
 * `valueLoss = ½ · (1/M) Σ_t m_t · max((V_t − G_t)², (V^clip_t − G_t)²)`.
 */
export function clippedValueLoss(values: tf.Tensor1D, oldValues: Float32Array, returns: Float32Array, mask: Float32Array, valueClip: number): tf.Scalar {
  const oldV = tf.tensor1d(oldValues);
  const ret = tf.tensor1d(returns);
  const clipped = tf.add(oldV, tf.clipByValue(tf.sub(values, oldV), -valueClip, valueClip));
  const perToken = tf.maximum(tf.square(tf.sub(values, ret)), tf.square(tf.sub(clipped, ret))) as tf.Tensor1D;
  return tf.mul(maskedMean(perToken, mask), 0.5) as tf.Scalar;
}

/**
 * Mean token entropy of the policy over the response tokens, from the logits `[R·L, V]` of the same
 * forward pass as the loss: `H_t = −Σ_v p_t(v) log p_t(v)`, `p_t = softmax(z_t)`, then `(1/M) Σ_t m_t H_t`.
 */
export function maskedEntropy(logits: tf.Tensor2D, mask: Float32Array): tf.Scalar {
  const logProbs = tf.logSoftmax(logits, 1);
  const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logProbs), logProbs), 1)) as tf.Tensor1D;
  return maskedMean(entropy, mask);
}

/** The per-token KL estimate as a tensor (formulas in `kl.ts`): k1 = log π − log π_ref, k3 = exp(d) − d − 1 with d = log π_ref − log π. */
export function klTensor(estimator: KlEstimator, logp: tf.Tensor1D, refLogp: Float32Array): tf.Tensor1D {
  const d = tf.sub(tf.tensor1d(refLogp), logp) as tf.Tensor1D;
  if (estimator === 'k1') return tf.neg(d) as tf.Tensor1D;
  return tf.sub(tf.sub(tf.exp(d), d), 1) as tf.Tensor1D;
}

/**
 * Approximate KL(π_old ‖ π) of an update over the response tokens, from the sampled tokens y ~ π_old:
 * the k3 estimator with the ratio ρ = π/π_old, `(1/M) Σ_t m_t ((ρ_t − 1) − log ρ_t)` (≥ 0; the
 * `approx_kl` of Stable-Baselines3's PPO).
 */
export function approxKlToOld(ratio: tf.Tensor1D, logRatio: tf.Tensor1D, mask: Float32Array): tf.Scalar {
  return maskedMean(tf.sub(tf.sub(ratio, 1), logRatio) as tf.Tensor1D, mask);
}
