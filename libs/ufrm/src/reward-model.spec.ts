import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { directionalGradientCheck, disposeModel, forwardHidden, initBackend, initParams, Trainer, type ModelConfigInput } from '@xyp/engine';
import { createRng } from '@xyp/random';
import { pairwiseAccuracy, rewardForward, trainRewardModel, ufrmLoss, type PreferencePair } from './reward-model';

beforeAll(async () => {
  await initBackend();
});

/**
 * Synthetic preferences over tokens 1..8: the chosen response holds 3-4 copies of token 1 ("good"),
 * the rejected one 0-1; the rest of both responses is random.
 */
function preferencePairs(count: number, seed: number): PreferencePair[] {
  const rng = createRng(seed);
  const response = (good: number): number[] => {
    const r = Array.from({ length: 6 }, () => 2 + rng.nextInt(7));
    for (let i = 0; i < good; i++) r[rng.nextInt(6)] = 1;
    return r;
  };
  return Array.from({ length: count }, () => ({
    prompt: [9, 2 + rng.nextInt(7)],
    chosen: response(3 + rng.nextInt(2)),
    rejected: response(rng.nextInt(2)),
  }));
}

describe('reward model', () => {
  it('reaches at least 90% pairwise accuracy on a held-out split of a learnable preference set', async () => {
    const train = preferencePairs(256, 1);
    const heldOut = preferencePairs(128, 2);
    const model = initParams({ vocabSize: 10, contextLength: 8, layers: 1, width: 32, heads: 2, lmHead: false, valueHead: true, dropout: 0.1 }, 3);
    const before = pairwiseAccuracy(model, heldOut);
    const trainer = new Trainer(model, { lr: 3e-3, warmupSteps: 5, totalSteps: 80, weightDecay: 0 }, 4);
    await trainRewardModel(trainer, train, { steps: 80, batchSize: 16, weights: { bt: 1, irl: 0.1, cl: 0.1, tau: 0.1 } });
    const after = pairwiseAccuracy(model, heldOut);
    expect(before).toBeLessThan(0.9);
    expect(after).toBeGreaterThanOrEqual(0.9);
    trainer.dispose();
    disposeModel(model);
  });
});

const tiny: ModelConfigInput = { vocabSize: 11, contextLength: 8, layers: 2, width: 8, heads: 2, lmHead: false, valueHead: true, dropout: 0.1 };

function expectMatch({ analytic, numeric }: { analytic: number; numeric: number }): void {
  expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
  expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.abs(analytic) + 1e-4);
}

describe('finite-difference gradient checks of the UFRM loss on a tiny model', () => {
  const pairs: PreferencePair[] = [
    { prompt: [1, 2], chosen: [3, 4, 5], rejected: [6, 7] },
    { prompt: [2], chosen: [8, 9], rejected: [10, 1, 2] },
    { prompt: [5, 5, 5], chosen: [4], rejected: [3, 3] },
  ];

  it('Bradley-Terry term', () => {
    const model = initParams(tiny, 3);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 1 }, [1, 2]).loss, 9));
  });

  it('inverse-RL term', () => {
    const model = initParams(tiny, 4);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 0, irl: 1 }, [1, 2]).loss, 10));
  });

  it('SimCSE contrastive term with two dropout passes', () => {
    const model = initParams(tiny, 5);
    const { cl } = tf.tidy(() => {
      const t = ufrmLoss(model, pairs, { bt: 0, cl: 1, tau: 0.5 }, [1, 2]);
      return { cl: t.cl.dataSync()[0] };
    });
    expect(cl).toBeGreaterThan(0);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 0, cl: 1, tau: 0.5 }, [1, 2]).loss, 11));
  });

  it('all terms weighted together', () => {
    const model = initParams(tiny, 6);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 1, irl: 0.5, cl: 0.3, tau: 0.5 }, [3, 4]).loss, 12));
  });

  it('all terms with the mean-pooled reward', () => {
    const model = initParams({ ...tiny, pooling: 'mean' }, 7);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 1, irl: 0.5, cl: 0.3, tau: 0.5 }, [3, 4]).loss, 13));
  });
});

describe('reward pooling', () => {
  it("reads the reward from the last token's hidden state, or from the mean over each sequence's own tokens (padding excluded)", () => {
    const config: ModelConfigInput = { vocabSize: 11, contextLength: 8, layers: 1, width: 8, heads: 2, lmHead: false, valueHead: true };
    const last = initParams(config, 5);
    const mean = { ...last, config: { ...last.config, pooling: 'mean' as const } };
    const sequences = [[1, 2, 3, 4, 5], [6, 7]];
    // Each sequence alone (no padding): its final hidden rows, pooled by hand.
    const alone = sequences.map((s) => tf.tidy(() => forwardHidden(last, { ids: Int32Array.from(s), batch: 1, seq: s.length }).arraySync() as number[][]));
    const w = (last.params.value_w as tf.Tensor).dataSync();
    const b = (last.params.value_b as tf.Tensor).dataSync()[0];
    const head = (h: number[]) => h.reduce((sum, x, j) => sum + x * w[j], b);
    const byHandLast = alone.map((rows) => head(rows[rows.length - 1]));
    const byHandMean = alone.map((rows) => head(rows[0].map((_, j) => rows.reduce((sum, row) => sum + row[j], 0) / rows.length)));
    const lastR = tf.tidy(() => Array.from(rewardForward(last, sequences).r.dataSync()));
    const meanR = tf.tidy(() => Array.from(rewardForward(mean, sequences).r.dataSync()));
    lastR.forEach((r, i) => expect(r).toBeCloseTo(byHandLast[i], 4));
    meanR.forEach((r, i) => expect(r).toBeCloseTo(byHandMean[i], 4));
    // The two readings differ (the test would pass vacuously if they did not).
    expect(Math.abs(meanR[0] - lastR[0])).toBeGreaterThan(1e-3);
    disposeModel(last);
  });
});
