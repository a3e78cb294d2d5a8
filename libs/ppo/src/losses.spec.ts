/**
 * The clipped PPO losses against values worked out here with plain numbers, token by token, with
 * every branch of both clips taken by some token and a masked token that must not count.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@xyp/engine';
import { klK1, klK3 } from './kl';
import { approxKlToOld, clippedPolicyLoss, clippedPolicyTerms, clippedValueLoss, klTensor, maskedEntropy } from './losses';

beforeAll(async () => {
  await initBackend();
});

const value = (t: tf.Tensor): number => t.dataSync()[0];

describe('clipped policy loss', () => {
  const eps = 0.2;
  // log-ratios chosen so that ρ = 1.5, 0.9, 0.5, 1.1, 1.3 (and a masked token with ρ = 3).
  const ratios = [1.5, 0.9, 0.5, 1.1, 1.3, 3];
  const oldLogp = [-1, -2, -0.5, -1.5, -0.7, -1];
  const logp = ratios.map((rho, i) => oldLogp[i] + Math.log(rho));
  const advantages = [2, 2, -1, -1, -0.5, 5];
  const mask = [1, 1, 1, 1, 1, 0];

  it('is (1/M) Σ m·max(−A·ρ, −A·clip(ρ, 1 ± ε)) over the response tokens', () => {
    // Token by token:
    //   A = 2,  ρ = 1.5: max(−3, −2·1.2) = −2.4   (clipped: no credit beyond 1 + ε)
    //   A = 2,  ρ = 0.9: max(−1.8, −1.8) = −1.8   (inside the range)
    //   A = −1, ρ = 0.5: max(0.5, 0.8) = 0.8      (clipped at 1 − ε)
    //   A = −1, ρ = 1.1: max(1.1, 1.1) = 1.1
    //   A = −0.5, ρ = 1.3: max(0.65, 0.6) = 0.65  (the unclipped term is the larger, pessimistic one)
    //   masked: not counted.
    const expected = (-2.4 + -1.8 + 0.8 + 1.1 + 0.65) / 5;
    const got = tf.tidy(() => value(clippedPolicyLoss(tf.tensor1d(logp), Float32Array.from(oldLogp), Float32Array.from(advantages), Float32Array.from(mask), eps)));
    expect(got).toBeCloseTo(expected, 5);
  });

  it('equals −mean(A) at the old policy (ρ = 1)', () => {
    const got = tf.tidy(() => value(clippedPolicyLoss(tf.tensor1d(oldLogp), Float32Array.from(oldLogp), Float32Array.from(advantages), Float32Array.from(mask), eps)));
    expect(got).toBeCloseTo(-(2 + 2 - 1 - 1 - 0.5) / 5, 5);
  });

  it('clip fraction: the share of response tokens on which the clipped term is taken', () => {
    // Clipped term taken (strictly larger): A = 2, ρ = 1.5 (−2.4 > −3) and A = −1, ρ = 0.5 (0.8 > 0.5);
    // not: ρ = 0.9 and ρ = 1.1 (inside), and A = −0.5, ρ = 1.3 — ρ is outside 1 ± ε but the unclipped
    // 0.65 is the larger term, so its gradient flows; the masked ρ = 3 does not count. 2 of 5.
    const got = tf.tidy(() => value(clippedPolicyTerms(tf.tensor1d(logp), Float32Array.from(oldLogp), Float32Array.from(advantages), Float32Array.from(mask), eps).clipFraction));
    expect(got).toBeCloseTo(2 / 5, 6);
    // At the old policy nothing is clipped.
    const none = tf.tidy(() => value(clippedPolicyTerms(tf.tensor1d(oldLogp), Float32Array.from(oldLogp), Float32Array.from(advantages), Float32Array.from(mask), eps).clipFraction));
    expect(none).toBe(0);
  });

  it('approximate KL to the old policy: mean of (ρ − 1) − log ρ over the response tokens', () => {
    // ρ = 1.5, 0.9, 0.5, 1.1, 1.3: 0.5 − 0.4054651 = 0.0945349, −0.1 + 0.1053605 = 0.0053605,
    // −0.5 + 0.6931472 = 0.1931472, 0.1 − 0.0953102 = 0.0046898, 0.3 − 0.2623643 = 0.0376357.
    const expected = (0.0945349 + 0.0053605 + 0.1931472 + 0.0046898 + 0.0376357) / 5;
    const got = tf.tidy(() => {
      const t = clippedPolicyTerms(tf.tensor1d(logp), Float32Array.from(oldLogp), Float32Array.from(advantages), Float32Array.from(mask), eps);
      return value(approxKlToOld(t.ratio, t.logRatio, Float32Array.from(mask)));
    });
    expect(got).toBeCloseTo(expected, 6);
  });
});

describe('token entropy over the response tokens', () => {
  it('is the mean over masked rows of −Σ p log p of softmax(logits)', () => {
    // Row 0: logits (0, 0) → p = (½, ½), H = ln 2 = 0.6931472.
    // Row 1: logits (0, ln 3) → p = (¼, ¾), H = ¼ ln 4 + ¾ ln(4/3) = 0.3465736 + 0.2157616 = 0.5623351.
    // Row 2 (masked): logits (10, 0), not counted.
    const logits = [0, 0, 0, Math.log(3), 10, 0];
    const got = tf.tidy(() => value(maskedEntropy(tf.tensor2d(logits, [3, 2]), Float32Array.from([1, 1, 0]))));
    expect(got).toBeCloseTo((0.6931472 + 0.5623351) / 2, 6);
    // Uniform over 4 tokens: ln 4.
    expect(tf.tidy(() => value(maskedEntropy(tf.tensor2d([3, 3, 3, 3], [1, 4]), Float32Array.from([1]))))).toBeCloseTo(Math.log(4), 6);
  });
});

describe('KL estimates as tensors', () => {
  it('match the plain-number k1 and k3 token by token', () => {
    const logp = [-1.2, -0.4, -2, -0.7];
    const ref = [-1.0, -0.9, -1, -0.7];
    for (const estimator of ['k1', 'k3'] as const) {
      const got = tf.tidy(() => Array.from(klTensor(estimator, tf.tensor1d(logp), Float32Array.from(ref)).dataSync()));
      got.forEach((x, i) => expect(x).toBeCloseTo((estimator === 'k1' ? klK1 : klK3)(logp[i], ref[i]), 6));
    }
  });
});

describe('clipped value loss', () => {
  const epsV = 0.2;
  const oldValues = [1.0, 1.0, 0.0, 0.5, 2.0];
  const values = [1.5, 0.9, -0.6, 0.6, 9];
  const returns = [2.0, 0.0, 0.1, 0.55, 0];
  const mask = [1, 1, 1, 1, 0];

  it('is ½ (1/M) Σ m·max((V − G)², (V_old + clip(V − V_old, ±ε_v) − G)²)', () => {
    // Token by token (V_clip = V_old + clip(V − V_old, ±0.2)):
    //   V 1.5,  V_clip 1.2:  max(0.25, 0.64) = 0.64   (clipped move counts: the pessimistic term)
    //   V 0.9,  V_clip 0.9:  max(0.81, 0.81) = 0.81
    //   V −0.6, V_clip −0.2: max(0.49, 0.09) = 0.49
    //   V 0.6,  V_clip 0.6:  max(0.0025, 0.0025) = 0.0025
    //   masked: not counted.
    const expected = 0.5 * ((0.64 + 0.81 + 0.49 + 0.0025) / 4);
    const got = tf.tidy(() => value(clippedValueLoss(tf.tensor1d(values), Float32Array.from(oldValues), Float32Array.from(returns), Float32Array.from(mask), epsV)));
    expect(got).toBeCloseTo(expected, 5);
  });
});
