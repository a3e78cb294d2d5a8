/**
 * Advantages and returns of PPO rollouts: per-token rewards with the KL penalty, then generalised
 * advantage estimation (Schulman et al., "High-Dimensional Continuous Control Using Generalized
 * Advantage Estimation", ICLR 2016, eq. 16) and whitening. Plain numbers, no tensors.
 */
import { klEstimate, type KlEstimator } from './kl';

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

/** The knobs of the advantage pass (`PpoConfig`'s; `klEstimator` defaults to k1). */
export interface AdvantageConfig {
  klCoef: number;
  gamma: number;
  lambda: number;
  klEstimator?: KlEstimator;
}

/** Flat indices of the response tokens of row b (mask 1), in order. */
function responsePositions(mask: Float32Array, b: number, L: number): number[] {
  const positions: number[] = [];
  for (let t = 0; t < L; t++) if (mask[b * L + t] === 1) positions.push(b * L + t);
  return positions;
}

/**
 * Per-token shaped rewards `[R·L]` (double precision): `r_t = −β·KL_t` on every response token, `KL_t` the chosen
 * estimator between π_old and π_ref at y_t, plus the rollout's score on its last response token; 0 on
 * prompt and padding. Also `kl` `[R·L]`, the per-token estimate itself (0 off the mask).
 */
export function shapedRewards(
  input: Omit<AdvantageInput, 'oldValues'>,
  c: Pick<AdvantageConfig, 'klCoef' | 'klEstimator'>,
): { rewards: Float64Array; kl: Float64Array } {
  const { batch: R, seq: L, mask, oldLogp, refLogp, scores } = input;
  const estimator = c.klEstimator ?? 'k1';
  const rewards = new Float64Array(R * L);
  const kl = new Float64Array(R * L);
  for (let b = 0; b < R; b++) {
    const positions = responsePositions(mask, b, L);
    if (positions.length === 0) continue;
    for (const n of positions) {
      kl[n] = klEstimate(estimator, oldLogp[n], refLogp[n]);
      rewards[n] = -c.klCoef * kl[n];
    }
    rewards[positions[positions.length - 1]] += scores[b];
  }
  return { rewards, kl };
}

/**
 * GAE over the response tokens of each row, from rewards and values `[R·L]`:
 *   `δ_t = r_t + γV_{t+1} − V_t`, `A_t = δ_t + γλA_{t+1}`, `G_t = A_t + V_t`;
 * the last response token is terminal: V past it is 0 and A past it is 0 (no bootstrap from the next
 * rollout, nor from a truncated one's next state, as OpenRLHF's `get_advantages_and_returns`).
 * Raw advantages (not whitened), 0 off the mask.
 */
export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  mask: Float32Array,
  batch: number,
  seq: number,
  c: Pick<AdvantageConfig, 'gamma' | 'lambda'>,
): { advantages: Float32Array; returns: Float32Array } {
  const advantages = new Float32Array(batch * seq);
  const returns = new Float32Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    const positions = responsePositions(mask, b, seq);
    let next = 0;
    let acc = 0;
    for (let i = positions.length - 1; i >= 0; i--) {
      const n = positions[i];
      const delta = rewards[n] + c.gamma * next - values[n];
      acc = delta + c.gamma * c.lambda * acc;
      advantages[n] = acc;
      returns[n] = acc + values[n];
      next = values[n];
    }
  }
  return { advantages, returns };
}

/**
 * Whitening over the mask (TRL / OpenRLHF `masked_whiten` with the mean shifted back out):
 * `(x − mean) / (std + 1e-8)`, mean and population std over the positions where mask is 1; 0 elsewhere.
 */
export function maskedWhiten(x: ArrayLike<number>, mask: ArrayLike<number>): Float32Array {
  let count = 0;
  let mean = 0;
  for (let n = 0; n < x.length; n++) {
    if (!mask[n]) continue;
    mean += x[n];
    count += 1;
  }
  const out = new Float32Array(x.length);
  if (count === 0) return out;
  mean /= count;
  let variance = 0;
  for (let n = 0; n < x.length; n++) if (mask[n]) variance += (x[n] - mean) ** 2;
  const std = Math.sqrt(variance / count) + 1e-8;
  for (let n = 0; n < x.length; n++) out[n] = mask[n] ? (x[n] - mean) / std : 0;
  return out;
}

/**
 * Per-token rewards with the KL penalty, GAE and whitening, over the response tokens of each
 * rollout (the positions where `mask` is 1, in order): `shapedRewards`, `gae` (returns from the raw
 * advantages), then the advantages whitened over every response token of the round (`maskedWhiten`).
 * `rewards` are the shaped rewards `[R·L]`; `klSum` is `Σ KL_t` (the chosen estimator) over every
 * response token.
 */
export function ppoAdvantages(
  input: AdvantageInput,
  c: AdvantageConfig,
): { advantages: Float32Array; returns: Float32Array; rewards: Float64Array; klSum: number } {
  const { rewards, kl } = shapedRewards(input, c);
  const raw = gae(rewards, input.oldValues, input.mask, input.batch, input.seq, c);
  let klSum = 0;
  for (let n = 0; n < kl.length; n++) klSum += kl[n];
  return { advantages: maskedWhiten(raw.advantages, input.mask), returns: raw.returns, rewards, klSum };
}
