/**
 * Per-token KL estimators between the sampling policy π and the frozen reference π_ref, from the
 * log-probabilities of the sampled token y_t ~ π (Schulman, "Approximating KL Divergence", 2020;
 * OpenRLHF `compute_approx_kl` with `kl_estimator` "k1" / "k3"). With `d = log π_ref(y_t) − log π(y_t)`
 * (the log of the ratio r = π_ref/π that Schulman's note samples):
 *
 *   k1_t = −d = log π(y_t) − log π_ref(y_t)   unbiased for KL(π ‖ π_ref), may be negative per token
 *   k3_t = exp(d) − d − 1                      unbiased too, ≥ 0 per token, lower variance near π_ref
 *
 * The chosen estimator (`PpoConfig.klEstimator`, k1 by default) is both the per-token penalty in the
 * PPO rewards (`r_t = −β·KL_t`) and, summed over a rollout, the reported KL.
 */
export const KL_ESTIMATORS = ['k1', 'k3'] as const;
export type KlEstimator = (typeof KL_ESTIMATORS)[number];

/** `k1 = log π − log π_ref`. */
export function klK1(logp: number, refLogp: number): number {
  return logp - refLogp;
}

/** `k3 = exp(d) − d − 1`, `d = log π_ref − log π`. */
export function klK3(logp: number, refLogp: number): number {
  const d = refLogp - logp;
  return Math.exp(d) - d - 1;
}

/** The per-token estimate of the given estimator. */
export function klEstimate(estimator: KlEstimator, logp: number, refLogp: number): number {
  return estimator === 'k3' ? klK3(logp, refLogp) : klK1(logp, refLogp);
}
