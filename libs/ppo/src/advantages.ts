/**
 * Advantages and returns of PPO rollouts: per-token rewards with the KL penalty, then generalised
 * advantage estimation (Schulman et al., "High-Dimensional Continuous Control Using Generalized
 * Advantage Estimation", ICLR 2016, eq. 16) and whitening. Plain numbers, no tensors.
 */
import { klK1 } from './kl';
import type { PpoConfig } from './ppo';

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
 *   `r_t = −β·k1_t = −β (log π_old(y_t) − log π_ref(y_t))`, plus the rollout's score on its last token;
 *   `δ_t = r_t + γV_{t+1} − V_t`, `A_t = δ_t + γλA_{t+1}`, `G_t = A_t + V_t` (raw A, before whitening);
 *   the last response token is terminal: V past it is 0 and A past it is 0 (no bootstrap from the
 *   next rollout, nor from a truncated one's next state, as OpenRLHF's `get_advantages_and_returns`);
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
    const rewards = positions.map((n) => -c.klCoef * klK1(oldLogp[n], refLogp[n]));
    for (const n of positions) klSum += klK1(oldLogp[n], refLogp[n]);
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

