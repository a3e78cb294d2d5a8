import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { cloneModel, initParams } from './model';
import { ppoAdvantages, ppoRound } from './ppo';
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

  it('puts the per-token KL penalty into the rewards, and its GAE advantages and returns match the closed forms', () => {
    // Two rollouts over L = 4 positions; response tokens where the mask is 1.
    const mask = Float32Array.from([0, 1, 1, 1, 1, 1, 0, 0]);
    const oldLogp = Float32Array.from([0, -1.2, -0.4, -2.0, -0.7, -1.5, 0, 0]);
    const refLogp = Float32Array.from([0, -1.0, -0.9, -1.1, -0.7, -2.5, 0, 0]);
    const oldValues = Float32Array.from([0, 0.3, -0.2, 0.5, 1.1, 0.4, 0, 0]);
    const scores = [1.5, -0.5];
    const beta = 0.3;
    const input = { oldLogp, refLogp, oldValues, mask, scores, batch: 2, seq: 4 };
    const rows = [
      [1, 2, 3],
      [4, 5],
    ];
    const reward = (row: number, i: number): number => -beta * (oldLogp[rows[row][i]] - refLogp[rows[row][i]]) + (i === rows[row].length - 1 ? scores[row] : 0);
    const whiten = (raw: Map<number, number>): Map<number, number> => {
      const xs = [...raw.values()];
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length) + 1e-8;
      return new Map([...raw].map(([n, a]) => [n, (a - mean) / std]));
    };

    // γ = λ = 1: the δ telescope, A_t = Σ_{k≥t} r_k − V_t, and G_t = Σ_{k≥t} r_k.
    const mc = ppoAdvantages(input, { klCoef: beta, gamma: 1, lambda: 1 });
    const rawMc = new Map<number, number>();
    rows.forEach((positions, row) =>
      positions.forEach((n, i) => {
        let tail = 0;
        for (let k = i; k < positions.length; k++) tail += reward(row, k);
        expect(mc.returns[n]).toBeCloseTo(tail, 5);
        rawMc.set(n, tail - oldValues[n]);
      }),
    );
    for (const [n, a] of whiten(rawMc)) expect(mc.advantages[n]).toBeCloseTo(a, 4);

    // λ = 0: one-step TD, A_t = δ_t = r_t + γV_{t+1} − V_t (V = 0 past the last response token).
    const td = ppoAdvantages(input, { klCoef: beta, gamma: 0.5, lambda: 0 });
    const rawTd = new Map<number, number>();
    rows.forEach((positions, row) =>
      positions.forEach((n, i) => {
        const next = i + 1 < positions.length ? oldValues[positions[i + 1]] : 0;
        const delta = reward(row, i) + 0.5 * next - oldValues[n];
        expect(td.returns[n]).toBeCloseTo(delta + oldValues[n], 5);
        rawTd.set(n, delta);
      }),
    );
    for (const [n, a] of whiten(rawTd)) expect(td.advantages[n]).toBeCloseTo(a, 4);

    // Prompt and padding positions carry no advantage; klSum is Σ (log π_old − log π_ref) over response tokens.
    for (const n of [0, 6, 7]) expect(td.advantages[n]).toBe(0);
    expect(td.klSum).toBeCloseTo(-0.2 + 0.5 - 0.9 + 0 + 1.0, 5);
  });
});
