/**
 * The UFRM loss terms (XuanYuan3 report, 三 全能金融 Reward Model, 图2), each on the rewards or the
 * sequence representations of one batch of N preference pairs (x_i, y_i^c, y_i^r):
 *
 *   L_BT  = −(1/N) Σ_i log σ(r(x_i, y_i^c) − r(x_i, y_i^r))                       (Bradley-Terry)
 *   L_IRL = −(1/N) Σ_i [log σ(r(x_i, y_i^c)) + log σ(−r(x_i, y_i^r))]               (inverse RL)
 *   L_CL  = −(1/M) Σ_i log( exp(sim(h_i, h'_i)/τ) / Σ_j exp(sim(h_i, h'_j)/τ) )     (SimCSE)
 *   L     = w_bt·L_BT + w_irl·L_IRL + w_cl·L_CL [+ w_center·L_center]
 *
 * Two optional extras, as OpenRLHF and TRL offer them: a margin inside the Bradley-Terry term,
 * `L_BT = −(1/N) Σ_i log σ(r_c,i − r_r,i − m_i)` (OpenRLHF's `PairWiseLoss(margin)`, TRL's
 * `margin` column), with m_i the pair's label margin; and reward centering,
 * `L_center = (1/N) Σ_i (r_c,i + r_r,i)²` (TRL's `center_rewards_coefficient`, Eisenstein et al.
 * 2023), which pins the mean reward near 0 without changing any preference.
 *
 * r are value-head rewards `[N]`; for L_CL, h and h' `[M, D]` are the representations of the same M
 * sequences from two forward passes with independent dropout (M = 2N: every chosen and rejected
 * response), sim the cosine and τ the temperature, by which the similarity is divided. As in SimCSE
 * (Gao, Yao & Chen, EMNLP 2021, eq. 1) and the report's CL_loss, the denominator runs over every j of
 * the second pass, the positive j = i included, and over nothing of the first pass: an M-way softmax
 * per row of `S = sim(h, h')/τ` `[M, M]`, whose target is its diagonal.
 */
import * as tf from '@tensorflow/tfjs-core';
import { linear, tokenNll } from '@xyp/engine';
import type { UfrmWeights } from '@xyp/contracts';

/** `log σ(x) = −softplus(−x)`, stable for large |x|. */
export function logSigmoid(x: tf.Tensor1D): tf.Tensor1D {
  return tf.neg(tf.softplus(tf.neg(x)));
}

/**
 * `L_BT = −mean_i log σ(r_c,i − r_r,i − m_i)`, chosen and rejected rewards `[N]`; without `margin`,
 * m = 0 (the plain Bradley-Terry loss).
 */
export function bradleyTerryLoss(chosen: tf.Tensor1D, rejected: tf.Tensor1D, margin?: tf.Tensor1D): tf.Scalar {
  const diff = tf.sub(chosen, rejected) as tf.Tensor1D;
  return tf.neg(tf.mean(logSigmoid(margin ? (tf.sub(diff, margin) as tf.Tensor1D) : diff))) as tf.Scalar;
}

/** `L_center = mean_i (r_c,i + r_r,i)²`, chosen and rejected rewards `[N]`. */
export function rewardCenteringLoss(chosen: tf.Tensor1D, rejected: tf.Tensor1D): tf.Scalar {
  return tf.mean(tf.square(tf.add(chosen, rejected))) as tf.Scalar;
}

/** `L_IRL = −mean_i [log σ(r_c,i) + log σ(−r_r,i)]`, chosen and rejected rewards `[N]`. */
export function inverseRlLoss(chosen: tf.Tensor1D, rejected: tf.Tensor1D): tf.Scalar {
  return tf.neg(tf.mean(tf.add(logSigmoid(chosen), logSigmoid(tf.neg(rejected))))) as tf.Scalar;
}

/** Rows scaled to unit L2 norm, x `[M, D]` (ε = 1e-12 under the root keeps a zero row finite). */
function unitRows(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)));
}

/**
 * SimCSE contrastive loss of two passes h, h' `[M, D]` over the same M sequences:
 * `S = (h/‖h‖)·(h'/‖h'‖)ᵀ / τ` `[M, M]`, `L_CL = mean_i (logsumexp_j S_ij − S_ii)`.
 */
export function simcseLoss(h: tf.Tensor2D, hPrime: tf.Tensor2D, tau: number): tf.Scalar {
  const similarity = tf.div(linear(unitRows(h), tf.transpose(unitRows(hPrime))), tau) as tf.Tensor2D;
  return tf.mean(tokenNll(similarity, tf.range(0, h.shape[0], 1, 'int32') as tf.Tensor1D)) as tf.Scalar;
}

/** `L = w_bt·L_BT + w_irl·L_IRL + w_cl·L_CL + w_center·L_center` (the last only when given). */
export function combineUfrmTerms(
  terms: { bt: tf.Scalar; irl: tf.Scalar; cl: tf.Scalar; center?: tf.Scalar },
  weights: Pick<UfrmWeights, 'bt' | 'irl' | 'cl'> & { center?: number },
): tf.Scalar {
  const parts = [tf.mul(terms.bt, weights.bt), tf.mul(terms.irl, weights.irl), tf.mul(terms.cl, weights.cl)];
  if (terms.center && weights.center) parts.push(tf.mul(terms.center, weights.center));
  return tf.addN(parts) as tf.Scalar;
}
