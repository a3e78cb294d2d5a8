/**
 * Per-token KL estimators between the sampling policy π and the frozen reference π_ref, from the
 * log-probabilities of the sampled token y_t ~ π (Schulman, "Approximating KL Divergence", 2020;
 * OpenRLHF `compute_approx_kl`). Only k1 is used here: it is the per-token penalty in the PPO rewards
 * (`r_t = −β·k1_t`) and, summed over a rollout, the reported KL.
 *
 *   k1_t = log π(y_t) − log π_ref(y_t)     unbiased for KL(π ‖ π_ref), may be negative per token
 */
export function klK1(logp: number, refLogp: number): number {
  return logp - refLogp;
}
