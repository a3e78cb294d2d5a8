/**
 * The clipped PPO losses (Schulman et al., "Proximal Policy Optimization Algorithms", 2017, eq. 7;
 * value clipping as in OpenAI baselines' `ppo2` and OpenRLHF's `ValueLoss`), each a mean over the
 * response tokens of a minibatch: every input is `[R·L]` over packed rollouts, mask m is 1 on
 * response tokens, M = Σ m.
 */
import * as tf from '@tensorflow/tfjs-core';

function maskedMean(x: tf.Tensor1D, mask: Float32Array): tf.Scalar {
  const tokens = mask.reduce((a, b) => a + b, 0);
  return tf.div(tf.sum(tf.mul(x, tf.tensor1d(mask))), tokens) as tf.Scalar;
}

/**
 * `ρ_t = exp(log π(y_t) − log π_old(y_t))`,
 * `policyLoss = (1/M) Σ_t m_t · max(−A_t·ρ_t, −A_t·clip(ρ_t, 1 − ε, 1 + ε))`.
 */
export function clippedPolicyLoss(logp: tf.Tensor1D, oldLogp: Float32Array, advantages: Float32Array, mask: Float32Array, clip: number): tf.Scalar {
  const ratio = tf.exp(tf.sub(logp, tf.tensor1d(oldLogp)));
  const negAdv = tf.neg(tf.tensor1d(advantages));
  const perToken = tf.maximum(tf.mul(negAdv, ratio), tf.mul(negAdv, tf.clipByValue(ratio, 1 - clip, 1 + clip))) as tf.Tensor1D;
  return maskedMean(perToken, mask);
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
