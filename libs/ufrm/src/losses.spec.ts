/**
 * The UFRM loss formulas against values computed here with plain numbers (the report's 图2 and
 * SimCSE's eq. 1), on small fixed inputs, on both the native and the TF.js kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, initParams, useNativeKernels } from '@xyp/engine';
import { bradleyTerryLoss, combineUfrmTerms, inverseRlLoss, rewardCenteringLoss, simcseLoss } from './losses';
import { rewardForward, ufrmLoss, type PreferencePair } from './reward-model';

beforeAll(async () => {
  await initBackend();
});

/** `log σ(x)` in plain numbers. */
const logSigmoid = (x: number): number => -Math.log(1 + Math.exp(-x));
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const cosine = (a: number[], b: number[]): number => {
  const dot = a.reduce((s, x, i) => s + x * b[i], 0);
  return dot / (Math.hypot(...a) * Math.hypot(...b));
};
/** SimCSE with the positive in the denominator and only second-pass sequences in it. */
function simcseByHand(h: number[][], hPrime: number[][], tau: number): number {
  return mean(
    h.map((hi, i) => {
      const logits = hPrime.map((hj) => cosine(hi, hj) / tau);
      const lse = Math.log(logits.reduce((s, z) => s + Math.exp(z), 0));
      return lse - logits[i];
    }),
  );
}
const value = (t: tf.Tensor): number => t.dataSync()[0];

/** Each case runs on the TF.js kernels and on the native ones (the same TF.js path again when the addon is not built). */
const paths: [string, boolean][] = [
  ['TF.js kernels', false],
  ['native kernels when built', true],
];

describe.each(paths)('UFRM loss terms on fixed inputs (%s)', (_name, native) => {
  let previous = true;
  beforeAll(() => {
    previous = useNativeKernels(native);
    return () => void useNativeKernels(previous);
  });

  // Margins 0.8, −0.4, −0.2: not summing to 0, so swapping chosen and rejected changes L_BT.
  const chosen = [1.2, -0.3, 0.7];
  const rejected = [0.4, 0.1, 0.9];

  it('Bradley-Terry: −(1/N) Σ log σ(r_c − r_r)', () => {
    const expected = -mean(chosen.map((c, i) => logSigmoid(c - rejected[i])));
    // −(log σ(0.8) + log σ(−0.4) + log σ(−0.2)) / 3, written out.
    expect(expected).toBeCloseTo(-(Math.log(1 / (1 + Math.exp(-0.8))) + Math.log(1 / (1 + Math.exp(0.4))) + Math.log(1 / (1 + Math.exp(0.2)))) / 3, 12);
    const got = tf.tidy(() => value(bradleyTerryLoss(tf.tensor1d(chosen), tf.tensor1d(rejected))));
    expect(got).toBeCloseTo(expected, 5);
  });

  it('inverse RL: −(1/N) Σ [log σ(r_c) + log σ(−r_r)], the rejected reward pushed down', () => {
    const expected = -mean(chosen.map((c, i) => logSigmoid(c) + logSigmoid(-rejected[i])));
    const got = tf.tidy(() => value(inverseRlLoss(tf.tensor1d(chosen), tf.tensor1d(rejected))));
    expect(got).toBeCloseTo(expected, 5);
    // Raising a chosen reward or lowering a rejected one lowers the loss.
    const better = tf.tidy(() => value(inverseRlLoss(tf.tensor1d([2, -0.3, 0.5]), tf.tensor1d([0.4, -1, 0.9]))));
    expect(better).toBeLessThan(got);
  });

  // Four sequences (two pairs: chosen 0-1, rejected 2-3), width 3, two dropout passes.
  const h = [
    [1, 0, 0.5],
    [0.2, 1, 0],
    [0, 0.3, 1],
    [-0.5, 0.4, 0.2],
  ];
  const hPrime = [
    [0.9, 0.1, 0.4],
    [0.3, 0.8, 0.1],
    [0.1, 0.2, 1.1],
    [-0.4, 0.5, 0.1],
  ];

  it('SimCSE: mean_i −log(exp(cos(h_i, h′_i)/τ) / Σ_j exp(cos(h_i, h′_j)/τ)), τ dividing', () => {
    for (const tau of [0.05, 0.5, 2]) {
      const expected = simcseByHand(h, hPrime, tau);
      const got = tf.tidy(() => value(simcseLoss(tf.tensor2d(h), tf.tensor2d(hPrime), tau)));
      expect(got, `τ = ${tau}`).toBeCloseTo(expected, 4);
    }
  });

  it('SimCSE: the positive is in the denominator and first-pass sequences are not', () => {
    const tau = 0.5;
    const got = tf.tidy(() => value(simcseLoss(tf.tensor2d(h), tf.tensor2d(hPrime), tau)));
    const positiveExcluded = mean(
      h.map((hi, i) => {
        const z = hPrime.map((hj) => cosine(hi, hj) / tau);
        return Math.log(z.reduce((s, x, j) => (j === i ? s : s + Math.exp(x)), 0)) - z[i];
      }),
    );
    const withFirstPass = mean(
      h.map((hi, i) => {
        const z = [...hPrime.map((hj) => cosine(hi, hj) / tau), ...h.map((hj, j) => (j === i ? -Infinity : cosine(hi, hj) / tau))];
        return Math.log(z.reduce((s, x) => s + Math.exp(x), 0)) - z[i];
      }),
    );
    expect(Math.abs(got - positiveExcluded)).toBeGreaterThan(0.1);
    expect(Math.abs(got - withFirstPass)).toBeGreaterThan(0.1);
    // Identical orthonormal views: S = I/τ, so every row gives −log(e^{1/τ} / (e^{1/τ} + M − 1)).
    const eye = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ];
    const orthogonal = tf.tidy(() => value(simcseLoss(tf.tensor2d(eye), tf.tensor2d(eye), tau)));
    expect(orthogonal).toBeCloseTo(Math.log(Math.exp(1 / tau) + 2) - 1 / tau, 5);
  });

  it('combines the terms with their weights: w_bt·L_BT + w_irl·L_IRL + w_cl·L_CL', () => {
    const got = tf.tidy(() => value(combineUfrmTerms({ bt: tf.scalar(0.7), irl: tf.scalar(1.3), cl: tf.scalar(2.9) }, { bt: 1, irl: 0.25, cl: 0.1 })));
    expect(got).toBeCloseTo(0.7 * 1 + 1.3 * 0.25 + 2.9 * 0.1, 6);
  });
});

describe('ufrmLoss on a model: each term from the model’s own rewards and representations', () => {
  const pairs: PreferencePair[] = [
    { prompt: [1, 2], chosen: [3, 4, 5], rejected: [6, 7] },
    { prompt: [2], chosen: [8, 9], rejected: [10, 1, 2] },
    { prompt: [5, 5, 5], chosen: [4], rejected: [3, 3] },
  ];
  const sequences = [...pairs.map((p) => [...p.prompt, ...p.chosen]), ...pairs.map((p) => [...p.prompt, ...p.rejected])];

  it('uses all 2N chosen and rejected responses in one 2N-way SimCSE softmax, the second pass with its own dropout seed', () => {
    const model = initParams({ vocabSize: 11, contextLength: 8, layers: 1, width: 8, heads: 2, lmHead: false, valueHead: true, dropout: 0.2 }, 7);
    const weights = { bt: 0.6, irl: 0.3, cl: 0.2, tau: 0.25 };
    const seeds: [number, number] = [11, 12];
    const { r, h, h2 } = tf.tidy(() => {
      const first = rewardForward(model, sequences, seeds[0]);
      const second = rewardForward(model, sequences, seeds[1]);
      return { r: Array.from(first.r.dataSync()), h: first.h.arraySync() as number[][], h2: second.h.arraySync() as number[][] };
    });
    const N = pairs.length;
    const rc = r.slice(0, N);
    const rr = r.slice(N);
    const bt = -mean(rc.map((c, i) => logSigmoid(c - rr[i])));
    const irl = -mean(rc.map((c, i) => logSigmoid(c) + logSigmoid(-rr[i])));
    const cl = simcseByHand(h, h2, weights.tau);
    const terms = tf.tidy(() => {
      const t = ufrmLoss(model, pairs, weights, seeds);
      return { loss: value(t.loss), bt: value(t.bt), irl: value(t.irl), cl: value(t.cl), correct: t.correct };
    });
    expect(terms.bt).toBeCloseTo(bt, 5);
    expect(terms.irl).toBeCloseTo(irl, 5);
    expect(terms.cl).toBeCloseTo(cl, 4);
    expect(terms.loss).toBeCloseTo(0.6 * bt + 0.3 * irl + 0.2 * cl, 4);
    expect(terms.correct).toBe(rc.filter((c, i) => c > rr[i]).length);
    // A softmax over the chosen responses only (N-way) would give another value.
    expect(Math.abs(cl - simcseByHand(h.slice(0, N), h2.slice(0, N), weights.tau))).toBeGreaterThan(1e-3);
  });
});

describe('optional UFRM extras against plain numbers: margin inside L_BT, reward centering', () => {
  const chosen = [1.2, -0.3, 0.7];
  const rejected = [0.4, 0.1, 0.9];
  const margins = [0.5, 0, 1.5];

  it('margin: −(1/N) Σ log σ(r_c − r_r − m), larger than the loss without margin for positive m', () => {
    // Differences 0.8, −0.4, −0.2 minus margins 0.5, 0, 1.5 → 0.3, −0.4, −1.7.
    const expected = -(logSigmoid(0.3) + logSigmoid(-0.4) + logSigmoid(-1.7)) / 3;
    const got = tf.tidy(() => value(bradleyTerryLoss(tf.tensor1d(chosen), tf.tensor1d(rejected), tf.tensor1d(margins))));
    expect(got).toBeCloseTo(expected, 5);
    const plain = tf.tidy(() => value(bradleyTerryLoss(tf.tensor1d(chosen), tf.tensor1d(rejected))));
    expect(got).toBeGreaterThan(plain);
  });

  it('centering: (1/N) Σ (r_c + r_r)², and combined with its coefficient', () => {
    // Sums 1.6, −0.2, 1.6 → squares 2.56, 0.04, 2.56 → mean 1.72.
    const got = tf.tidy(() => value(rewardCenteringLoss(tf.tensor1d(chosen), tf.tensor1d(rejected))));
    expect(got).toBeCloseTo(1.72, 5);
    const combined = tf.tidy(() => value(combineUfrmTerms({ bt: tf.scalar(0.7), irl: tf.scalar(1.3), cl: tf.scalar(2.9), center: tf.scalar(1.72) }, { bt: 1, irl: 0.25, cl: 0.1, center: 0.01 })));
    expect(combined).toBeCloseTo(0.7 + 0.325 + 0.29 + 0.0172, 5);
  });

  it('ufrmLoss uses pair margins only when weights.margin is on', async () => {
    const model = initParams({ vocabSize: 16, contextLength: 8, width: 8, heads: 2, layers: 1, lmHead: false, valueHead: true }, 3);
    const pairs: PreferencePair[] = [
      { prompt: [1, 2], chosen: [3, 4], rejected: [5], margin: 2 },
      { prompt: [6], chosen: [7], rejected: [8, 9], margin: 1 },
    ];
    const rewards = tf.tidy(() => Array.from(rewardForward(model, [[1, 2, 3, 4], [6, 7], [1, 2, 5], [6, 8, 9]]).r.dataSync()));
    const withMargin = -(logSigmoid(rewards[0] - rewards[2] - 2) + logSigmoid(rewards[1] - rewards[3] - 1)) / 2;
    const without = -(logSigmoid(rewards[0] - rewards[2]) + logSigmoid(rewards[1] - rewards[3])) / 2;
    expect(tf.tidy(() => value(ufrmLoss(model, pairs, { bt: 1, margin: true }, undefined).bt))).toBeCloseTo(withMargin, 4);
    expect(tf.tidy(() => value(ufrmLoss(model, pairs, { bt: 1 }, undefined).bt))).toBeCloseTo(without, 4);
    const t = ufrmLoss(model, pairs, { bt: 1, center: 0.5 }, undefined);
    const center = ((rewards[0] + rewards[2]) ** 2 + (rewards[1] + rewards[3]) ** 2) / 2;
    expect(value(t.center)).toBeCloseTo(center, 4);
    expect(value(t.loss)).toBeCloseTo(without + 0.5 * center, 4);
    expect(t.chosenMean).toBeCloseTo((rewards[0] + rewards[1]) / 2, 5);
  });
});
