/**
 * GAE, the KL penalty and whitening against values worked out here with plain numbers: the
 * recursion written out step by step, and the closed forms it must reduce to.
 */
import { describe, expect, it } from 'vitest';
import { gae, maskedWhiten, ppoAdvantages, shapedRewards } from './advantages';
import { klEstimate, klK1, klK3 } from './kl';

/** Whitening over the given raw advantages: (A − mean) / (population std + 1e-8). */
function whiten(raw: number[]): number[] {
  const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
  const std = Math.sqrt(raw.reduce((a, b) => a + (b - mean) ** 2, 0) / raw.length) + 1e-8;
  return raw.map((a) => (a - mean) / std);
}

describe('KL estimator k1', () => {
  it('is log π(y) − log π_ref(y), signed', () => {
    expect(klK1(-1.2, -1.0)).toBeCloseTo(-0.2, 12);
    expect(klK1(-0.4, -0.9)).toBeCloseTo(0.5, 12);
    expect(klK1(-2, -2)).toBe(0);
  });
});

describe('KL estimator k3', () => {
  it('is exp(d) − d − 1 with d = log π_ref(y) − log π(y): ≥ 0, 0 only at π = π_ref', () => {
    // d = −1.0 − (−1.2) = 0.2:  e^0.2 − 0.2 − 1 = 1.2214027582 − 1.2 = 0.0214027582
    expect(klK3(-1.2, -1.0)).toBeCloseTo(0.0214027582, 9);
    // d = −0.9 − (−0.4) = −0.5: e^−0.5 + 0.5 − 1 = 0.6065306597 − 0.5 = 0.1065306597
    expect(klK3(-0.4, -0.9)).toBeCloseTo(0.1065306597, 9);
    // d = 1: e − 2 = 0.7182818285 (the sign of d matters: with −d it would be e^−1 = 0.3678794412)
    expect(klK3(-2, -1)).toBeCloseTo(0.7182818285, 9);
    expect(klK3(-2, -2)).toBe(0);
    expect(klEstimate('k3', -2, -1)).toBe(klK3(-2, -1));
    expect(klEstimate('k1', -2, -1)).toBe(klK1(-2, -1));
  });
});

describe('shaped rewards, GAE and whitening on two 3-token rollouts, k1 and k3 (hand-computed)', () => {
  // L = 5. Rollout 0: one prompt token, response at positions 1-3, padding at 4;
  // rollout 1: two prompt tokens, response at positions 7-9 (flat 5 + 2..4).
  const mask = Float32Array.from([0, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
  const oldLogp = Float32Array.from([0, -1.0, -0.5, -2.0, 0, 0, 0, -0.3, -1.1, -0.7]);
  const refLogp = Float32Array.from([0, -1.5, -0.5, -1.0, 0, 0, 0, -0.9, -1.0, -0.7]);
  const oldValues = Float32Array.from([9, 0.2, -0.4, 0.7, 9, 9, 9, 0.5, 0.1, -0.3]);
  const scores = [2.0, -1.0];
  const input = { oldLogp, refLogp, oldValues, mask, scores, batch: 2, seq: 5 };
  const positions = [1, 2, 3, 7, 8, 9];
  const off = [0, 4, 5, 6];
  const c = { klCoef: 0.1, gamma: 0.9, lambda: 0.8 };
  // d = log π_ref − log π_old per response token: (−0.5, 0, 1.0) and (−0.6, 0.1, 0).
  const closeAll = (got: ArrayLike<number>, want: number[], digits: number, what: string): void =>
    want.forEach((w, i) => expect(got[positions[i]], `${what} at ${positions[i]}`).toBeCloseTo(w, digits));

  it('k1: r_t = −β(log π_old − log π_ref), plus the score on the last token', () => {
    // k1 = −d = (0.5, 0, −1.0), (0.6, −0.1, 0); −0.1·k1, then +2.0 and −1.0 on the last tokens.
    const { rewards, kl } = shapedRewards(input, { ...c, klEstimator: 'k1' });
    closeAll(kl, [0.5, 0, -1.0, 0.6, -0.1, 0], 6, 'k1');
    closeAll(rewards, [-0.05, 0, 2.1, -0.06, 0.01, -1.0], 6, 'r');
    for (const n of off) expect(rewards[n]).toBe(0);
    // The default estimator is k1.
    expect(Array.from(shapedRewards(input, c).rewards)).toEqual(Array.from(rewards));
  });

  it('k3: r_t = −β(exp(d) − d − 1), plus the score on the last token', () => {
    // k3 = e^−0.5 + 0.5 − 1 = 0.1065306597, 0, e − 2 = 0.7182818285;
    //      e^−0.6 + 0.6 − 1 = 0.1488116361, e^0.1 − 0.1 − 1 = 0.0051709181, 0.
    const { rewards, kl } = shapedRewards(input, { ...c, klEstimator: 'k3' });
    closeAll(kl, [0.1065306597, 0, 0.7182818285, 0.1488116361, 0.0051709181, 0], 6, 'k3'); // inputs are float32
    closeAll(rewards, [-0.01065306597, 0, 2 - 0.07182818285, -0.01488116361, -0.00051709181, -1.0], 7, 'r');
    for (const n of off) expect(rewards[n]).toBe(0);
  });

  it('k1: GAE advantages and returns (γ = 0.9, λ = 0.8, γλ = 0.72), then whitening', () => {
    // Rollout 0, r = (−0.05, 0, 2.1), V = (0.2, −0.4, 0.7), the last token terminal:
    //   δ2 = 2.1 − 0.7 = 1.4;             A2 = 1.4
    //   δ1 = 0 + 0.9·0.7 + 0.4 = 1.03;    A1 = 1.03 + 0.72·1.4 = 2.038
    //   δ0 = −0.05 − 0.9·0.4 − 0.2 = −0.61; A0 = −0.61 + 0.72·2.038 = 0.85736
    // Rollout 1, r = (−0.06, 0.01, −1.0), V = (0.5, 0.1, −0.3):
    //   δ2 = −1 + 0.3 = −0.7;             A2 = −0.7
    //   δ1 = 0.01 − 0.27 − 0.1 = −0.36;   A1 = −0.36 − 0.72·0.7 = −0.864
    //   δ0 = −0.06 + 0.09 − 0.5 = −0.47;  A0 = −0.47 − 0.72·0.864 = −1.09208
    const { rewards } = shapedRewards(input, { ...c, klEstimator: 'k1' });
    const raw = gae(rewards, oldValues, mask, 2, 5, c);
    closeAll(raw.advantages, [0.85736, 2.038, 1.4, -1.09208, -0.864, -0.7], 6, 'A');
    // G = A + V.
    closeAll(raw.returns, [1.05736, 1.638, 2.1, -0.59208, -0.764, -1.0], 6, 'G');
    // Whitening over the six: mean 1.63928/6 = 0.2732133, population std 1.2131070.
    const out = ppoAdvantages(input, { ...c, klEstimator: 'k1' });
    closeAll(out.advantages, [0.48152938, 1.45476585, 0.92884358, -1.12545168, -0.93743859, -0.80224854], 5, 'whitened A');
    closeAll(out.returns, [1.05736, 1.638, 2.1, -0.59208, -0.764, -1.0], 6, 'G');
    for (const n of off) {
      expect(out.advantages[n]).toBe(0);
      expect(out.returns[n]).toBe(0);
    }
    expect(out.klSum).toBeCloseTo(0.5 + 0 - 1.0 + 0.6 - 0.1 + 0, 6);
  });

  it('k3: GAE advantages and returns, then whitening', () => {
    // Rollout 0, r = (−0.0106530660, 0, 1.9281718172):
    //   δ2 = 1.2281718172;  A2 = 1.2281718172
    //   δ1 = 1.03;          A1 = 1.03 + 0.72·1.2281718172 = 1.9142837084
    //   δ0 = −0.5706530660; A0 = −0.5706530660 + 0.72·1.9142837084 = 0.8076312040
    // Rollout 1, r = (−0.0148811636, −0.0005170918, −1):
    //   δ2 = −0.7;          A2 = −0.7
    //   δ1 = −0.3705170918; A1 = −0.3705170918 − 0.504 = −0.8745170918
    //   δ0 = −0.4248811636; A0 = −0.4248811636 − 0.72·0.8745170918 = −1.0545334697
    const out = ppoAdvantages(input, { ...c, klEstimator: 'k3' });
    const rawA = [0.807631204, 1.9142837084, 1.2281718172, -1.0545334697, -0.8745170918, -0.7];
    closeAll(out.returns, rawA.map((a, i) => a + [0.2, -0.4, 0.7, 0.5, 0.1, -0.3][i]), 6, 'G');
    // mean 0.2201726947, population std 1.1475423970.
    closeAll(out.advantages, [0.5119275, 1.47629492, 0.87839815, -1.110814, -0.95394278, -0.80186379], 5, 'whitened A');
    expect(out.klSum).toBeCloseTo(0.1065306597 + 0.7182818285 + 0.1488116361 + 0.0051709181, 6);
    expect(Array.from(out.rewards)).toEqual(Array.from(shapedRewards(input, { ...c, klEstimator: 'k3' }).rewards));
  });

  it('whitening is over the masked positions only: (x − mean)/(std + 1e-8), 0 elsewhere', () => {
    // x = 1, 2, 3, 6 under the mask (100 and −7 off it): mean 3, variance (4 + 1 + 0 + 9)/4 = 3.5.
    const w = maskedWhiten([1, 100, 2, 3, -7, 6], [1, 0, 1, 1, 0, 1]);
    const std = Math.sqrt(3.5) + 1e-8;
    expect(Array.from(w)).toEqual([(1 - 3) / std, 0, (2 - 3) / std, 0, 0, (6 - 3) / std].map((x) => Math.fround(x)));
    expect(w[0]).toBeCloseTo(-1.069044968, 7);
    expect(w[5]).toBeCloseTo(1.603567451, 7);
  });
});

describe('PPO advantages (GAE over the response tokens of each rollout)', () => {
  // Rollout 0: positions 1, 2, 3 of L = 5 are its response (position 0 a prompt token, 4 padding);
  // rollout 1: positions 6, 7 (5 a prompt token, 8-9 padding).
  const mask = Float32Array.from([0, 1, 1, 1, 0, 0, 1, 1, 0, 0]);
  const oldLogp = Float32Array.from([0, -1.0, -0.5, -2.0, 0, 0, -0.3, -1.1, 0, 0]);
  const refLogp = Float32Array.from([0, -1.5, -0.5, -1.0, 0, 0, -0.9, -1.0, 0, 0]);
  const values = Float32Array.from([9, 0.2, -0.4, 0.7, 9, 9, 1.5, -0.6, 9, 9]);
  const scores = [2.0, -1.0];
  const input = { oldLogp, refLogp, oldValues: values, mask, scores, batch: 2, seq: 5 };
  const beta = 0.1;
  const gamma = 0.9;
  const lambda = 0.8;

  it('works the recursion backwards from a terminal last token, written out by hand', () => {
    const out = ppoAdvantages(input, { klCoef: beta, gamma, lambda });
    // Rewards r_t = −β·(log π_old − log π_ref), plus the score on the rollout's last token.
    const r0 = [-beta * 0.5, -beta * 0, -beta * -1.0 + 2.0]; // 0.5, 0, −1 are log π_old − log π_ref
    const r1 = [-beta * 0.6, -beta * -0.1 - 1.0];
    // Rollout 0, V = (0.2, −0.4, 0.7); the last token is terminal (V after it is 0).
    const d02 = r0[2] - 0.7;
    const d01 = r0[1] + gamma * 0.7 - -0.4;
    const d00 = r0[0] + gamma * -0.4 - 0.2;
    const a02 = d02;
    const a01 = d01 + gamma * lambda * d02;
    const a00 = d00 + gamma * lambda * d01 + (gamma * lambda) ** 2 * d02;
    // Rollout 1, V = (1.5, −0.6): its own last token is terminal too; nothing of rollout 0 leaks in.
    const d11 = r1[1] - -0.6;
    const d10 = r1[0] + gamma * -0.6 - 1.5;
    const a11 = d11;
    const a10 = d10 + gamma * lambda * d11;

    const raw = [a00, a01, a02, a10, a11];
    const positions = [1, 2, 3, 6, 7];
    const v = [0.2, -0.4, 0.7, 1.5, -0.6];
    // Returns G_t = A_t + V_t from the raw advantages.
    positions.forEach((n, i) => expect(out.returns[n], `G at ${n}`).toBeCloseTo(raw[i] + v[i], 5));
    // Advantages whitened over the five response tokens; 0 on prompt and padding.
    whiten(raw).forEach((a, i) => expect(out.advantages[positions[i]], `A at ${positions[i]}`).toBeCloseTo(a, 4));
    for (const n of [0, 4, 5, 8, 9]) {
      expect(out.advantages[n]).toBe(0);
      expect(out.returns[n]).toBe(0);
    }
    // klSum = Σ k1 over the response tokens.
    expect(out.klSum).toBeCloseTo(0.5 + 0 + -1.0 + 0.6 + -0.1, 5);
  });

  it('gives the last response token δ = r − V: no bootstrap from what follows it', () => {
    const out = ppoAdvantages(input, { klCoef: beta, gamma: 1, lambda: 1 });
    // With γ = λ = 1 the return of the last token is its reward alone, whatever follows in the row.
    expect(out.returns[3]).toBeCloseTo(-beta * -1.0 + 2.0, 5);
    expect(out.returns[7]).toBeCloseTo(-beta * -0.1 - 1.0, 5);
    // Changing a padding value or the next rollout's values changes nothing in rollout 0.
    const changed = Float32Array.from(values);
    changed[4] = -50;
    changed[6] = 40;
    const again = ppoAdvantages({ ...input, oldValues: changed }, { klCoef: beta, gamma: 1, lambda: 1 });
    for (const n of [1, 2, 3]) expect(again.returns[n]).toBeCloseTo(out.returns[n], 5);
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
