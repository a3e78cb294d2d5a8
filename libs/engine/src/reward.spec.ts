import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { disposeModel, initParams } from './model';
import { pairwiseAccuracy, trainRewardModel, type PreferencePair } from './reward';
import { Rng } from './rng';
import { Trainer } from './train';

beforeAll(async () => {
  await initBackend();
});

/**
 * Synthetic preferences over tokens 1..8: the chosen response holds 3-4 copies of token 1 ("good"),
 * the rejected one 0-1; the rest of both responses is random.
 */
function preferencePairs(count: number, seed: number): PreferencePair[] {
  const rng = new Rng(seed);
  const response = (good: number): number[] => {
    const r = Array.from({ length: 6 }, () => 2 + rng.int(7));
    for (let i = 0; i < good; i++) r[rng.int(6)] = 1;
    return r;
  };
  return Array.from({ length: count }, () => ({
    prompt: [9, 2 + rng.int(7)],
    chosen: response(3 + rng.int(2)),
    rejected: response(rng.int(2)),
  }));
}

describe('reward model', () => {
  it('reaches at least 90% pairwise accuracy on a held-out split of a learnable preference set', () => {
    const train = preferencePairs(256, 1);
    const heldOut = preferencePairs(128, 2);
    const model = initParams({ vocabSize: 10, contextLength: 8, layers: 1, width: 32, heads: 2, lmHead: false, valueHead: true, dropout: 0.1 }, 3);
    const before = pairwiseAccuracy(model, heldOut);
    const trainer = new Trainer(model, { lr: 3e-3, warmupSteps: 5, totalSteps: 80, weightDecay: 0 }, 4);
    trainRewardModel(trainer, train, { steps: 80, batchSize: 16, weights: { bt: 1, irl: 0.1, cl: 0.1, tau: 0.1 } });
    const after = pairwiseAccuracy(model, heldOut);
    expect(before).toBeLessThan(0.9);
    expect(after).toBeGreaterThanOrEqual(0.9);
    trainer.dispose();
    disposeModel(model);
  });
});
