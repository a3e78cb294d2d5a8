/**
 * The UFRM loss terms (XuanYuan3 report, 三 全能金融 Reward Model, 图2), each on the rewards or the
 * sequence representations of one batch of N preference pairs (x_i, y_i^c, y_i^r):
 *
 *   L_BT  = −(1/N) Σ_i log σ(r(x_i, y_i^c) − r(x_i, y_i^r))                       (Bradley-Terry)
 *   L_IRL = −(1/N) Σ_i [log σ(r(x_i, y_i^c)) + log σ(−r(x_i, y_i^r))]               (inverse RL)
 *   L_CL  = −(1/M) Σ_i log( exp(sim(h_i, h'_i)/τ) / Σ_j exp(sim(h_i, h'_j)/τ) )     (SimCSE)
 *   L     = w_bt·L_BT + w_irl·L_IRL + w_cl·L_CL
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

/** `L_BT = −mean_i log σ(r_c,i − r_r,i)`, chosen and rejected rewards `[N]`. */
export function bradleyTerryLoss(chosen: tf.Tensor1D, rejected: tf.Tensor1D): tf.Scalar {
  return tf.neg(tf.mean(logSigmoid(tf.sub(chosen, rejected)))) as tf.Scalar;
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

/** `L = w_bt·L_BT + w_irl·L_IRL + w_cl·L_CL`. */
export function combineUfrmTerms(terms: { bt: tf.Scalar; irl: tf.Scalar; cl: tf.Scalar }, weights: Pick<UfrmWeights, 'bt' | 'irl' | 'cl'>): tf.Scalar {
  return tf.addN([tf.mul(terms.bt, weights.bt), tf.mul(terms.irl, weights.irl), tf.mul(terms.cl, weights.cl)]) as tf.Scalar;
}
