import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { cloneModel, initParams } from './model';
import { ppoRound } from './ppo';
import { Trainer } from './train';

beforeAll(async () => {
  await initBackend();
});

describe('PPO', () => {
  it('raises the mean of a verifiable reward while the measured KL stays inside the target band', () => {
    // Reward: the fraction of response tokens equal to 3 (about 1/8 for the initial policy).
    const reward = (_prompt: number[], response: number[]) => response.filter((t) => t === 3).length / response.length;
    const policy = initParams({ vocabSize: 8, contextLength: 16, layers: 1, width: 16, heads: 2, valueHead: true }, 1);
    const reference = cloneModel(policy);
    const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 100, weightDecay: 0 }, 2);
    const prompts = [[1], [2], [4], [5]];
    const rounds = [];
    for (let round = 0; round < 10; round++) {
      const r = ppoRound(trainer, reference, prompts, reward, { klCoef: 0.1, samplesPerPrompt: 8, maxTokens: 6, epochs: 2, minibatches: 2 });
      rounds.push(r);
    }
    const first = rounds[0].meanReward;
    const last = (rounds[8].meanReward + rounds[9].meanReward) / 2;
    expect(first).toBeLessThan(0.3);
    expect(last).toBeGreaterThan(first + 0.2);
    // Target band of the per-sequence KL to the reference: [0, 3] nats for 6-token responses.
    for (const r of rounds) {
      expect(r.meanKl).toBeGreaterThanOrEqual(-0.1);
      expect(r.meanKl).toBeLessThanOrEqual(3);
    }
  });
});
