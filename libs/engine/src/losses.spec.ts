import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { coordinateGradientCheck, directionalGradientCheck } from './grad-check';
import { initParams, type Model, type ModelConfigInput } from './model';
import { packRollouts, ppoAdvantages, ppoLoss, scoreRollouts, type PpoMinibatch } from './ppo';
import { Rng } from './rng';
import { ufrmLoss, type PreferencePair } from './reward';
import { cptBatch, lmLoss, packDocuments } from './train';

beforeAll(async () => {
  await initBackend();
});

const tiny: ModelConfigInput = { vocabSize: 11, contextLength: 8, layers: 2, width: 8, heads: 2 };

function expectMatch({ analytic, numeric }: { analytic: number; numeric: number }): void {
  expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
  expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.abs(analytic) + 1e-4);
}

describe('finite-difference gradient checks on a tiny model', () => {
  it('causal LM loss on packed rows with document masks (rotary positions)', () => {
    const model = initParams(tiny, 1);
    const rows = packDocuments([[1, 2, 3], [4, 5, 6, 7, 8], [9, 10, 1, 2, 3, 4]], 6, 0);
    const batch = cptBatch(rows, [0, 1]);
    expect(batch.segments).toBeDefined();
    expectMatch(directionalGradientCheck(model.params, () => lmLoss(model, batch).loss, 7));
  });

  it('SFT loss (weights on some tokens only) with learned positions and dropout', () => {
    const model = initParams({ ...tiny, positions: 'learned', dropout: 0.2 }, 2);
    const ids = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2]);
    const targets = Int32Array.from([2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3]);
    const weights = Float32Array.from([0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]);
    const batch = { ids, targets, weights, batch: 2, seq: 6 };
    expectMatch(directionalGradientCheck(model.params, () => lmLoss(model, batch, 99).loss, 8));
  });

  const pairs: PreferencePair[] = [
    { prompt: [1, 2], chosen: [3, 4, 5], rejected: [6, 7] },
    { prompt: [2], chosen: [8, 9], rejected: [10, 1, 2] },
    { prompt: [5, 5, 5], chosen: [4], rejected: [3, 3] },
  ];
  const rm: ModelConfigInput = { ...tiny, lmHead: false, valueHead: true, dropout: 0.1 };

  it('Bradley-Terry term of the UFRM loss', () => {
    const model = initParams(rm, 3);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 1 }, [1, 2]).loss, 9));
  });

  it('inverse-RL term of the UFRM loss', () => {
    const model = initParams(rm, 4);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 0, irl: 1 }, [1, 2]).loss, 10));
  });

  it('SimCSE contrastive term with two dropout passes', () => {
    const model = initParams(rm, 5);
    const { cl } = tf.tidy(() => {
      const t = ufrmLoss(model, pairs, { bt: 0, cl: 1, tau: 0.5 }, [1, 2]);
      return { cl: t.cl.dataSync()[0] };
    });
    expect(cl).toBeGreaterThan(0);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 0, cl: 1, tau: 0.5 }, [1, 2]).loss, 11));
  });

  it('all UFRM terms weighted together', () => {
    const model = initParams(rm, 6);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 1, irl: 0.5, cl: 0.3, tau: 0.5 }, [3, 4]).loss, 12));
  });

  /**
   * A PPO minibatch measured at θ_old (log-probabilities, values, and advantages/returns from
   * KL-penalised rewards against a different reference model), with the policy then moved to θ so
   * that some ratios and value changes fall outside the clip ranges, as after a few updates.
   */
  function ppoSetup(): { policy: Model; mb: PpoMinibatch; clip: number; valueClip: number } {
    const config: ModelConfigInput = { ...tiny, contextLength: 12, valueHead: true };
    const policy = initParams(config, 13);
    const reference = initParams(config, 14);
    const prompts = [[1, 2], [3], [4, 5, 6]];
    const samples = [
      { prompt: 0, tokens: [3, 4, 5] },
      { prompt: 1, tokens: [7, 8] },
      { prompt: 2, tokens: [9, 10, 1, 2] },
      { prompt: 0, tokens: [6] },
    ];
    const rng = new Rng(15);
    const jitter = (model: Model, name: string, scale: number): void => {
      const v = model.params[name];
      const moved = tf.tidy(() => tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal() * scale), v.shape)));
      v.assign(moved);
      moved.dispose();
    };
    // A reference far enough from the policy for the per-token KL penalty to shape the rewards.
    jitter(reference, 'lm_head', 0.5);
    const rollouts = packRollouts(prompts, samples);
    const [oldLogp, oldValues, refLogp] = tf.tidy(() => {
      const p = scoreRollouts(policy, rollouts, true);
      const q = scoreRollouts(reference, rollouts, false);
      return [p.logp.dataSync() as Float32Array, p.values!.dataSync() as Float32Array, q.logp.dataSync() as Float32Array];
    });
    const { advantages, returns, klSum } = ppoAdvantages(
      { oldLogp, refLogp, oldValues, mask: rollouts.mask, scores: [0.5, -1, 2, 0.3], batch: rollouts.batch, seq: rollouts.seq },
      { klCoef: 0.2, gamma: 0.9, lambda: 0.8 },
    );
    expect(klSum).toBeGreaterThan(0.5);
    jitter(policy, 'lm_head', 0.1);
    jitter(policy, 'value_w', 0.15);
    jitter(policy, 'layers.0.wv', 0.05);
    return { policy, mb: { ...rollouts, oldLogp, oldValues, advantages, returns }, clip: 0.2, valueClip: 0.2 };
  }

  it('PPO loss: clipped policy term and clipped value term on advantages from KL-penalised rewards', () => {
    const { policy, mb, clip, valueClip } = ppoSetup();
    // Both branches of each clip are taken by some response token, and no token sits within 1e-3 of
    // a kink, so the finite differences do not straddle one.
    const { ratio, values } = tf.tidy(() => {
      const { logp, values } = scoreRollouts(policy, mb, true);
      return { ratio: tf.exp(tf.sub(logp, tf.tensor1d(mb.oldLogp))).dataSync(), values: values!.dataSync() };
    });
    let policyClipped = 0;
    let valueClipped = 0;
    let responseTokens = 0;
    for (let n = 0; n < mb.mask.length; n++) {
      if (!mb.mask[n]) continue;
      responseTokens += 1;
      const a = mb.advantages[n];
      if ((a > 0 && ratio[n] > 1 + clip) || (a < 0 && ratio[n] < 1 - clip)) policyClipped += 1;
      const dv = values[n] - mb.oldValues[n];
      const vc = mb.oldValues[n] + Math.max(-valueClip, Math.min(valueClip, dv));
      if ((vc - mb.returns[n]) ** 2 > (values[n] - mb.returns[n]) ** 2) valueClipped += 1;
      expect(Math.min(Math.abs(ratio[n] - 1 - clip), Math.abs(ratio[n] - 1 + clip))).toBeGreaterThan(1e-3);
      expect(Math.abs(Math.abs(dv) - valueClip)).toBeGreaterThan(1e-3);
    }
    expect(policyClipped).toBeGreaterThan(0);
    expect(policyClipped).toBeLessThan(responseTokens);
    expect(valueClipped).toBeGreaterThan(0);
    expect(valueClipped).toBeLessThan(responseTokens);

    const c = { clip, valueClip, valueCoef: 0.5 };
    expectMatch(directionalGradientCheck(policy.params, () => ppoLoss(policy, mb, c).loss, 16));
    expectMatch(directionalGradientCheck(policy.params, () => ppoLoss(policy, mb, c).loss, 17));
    for (const check of coordinateGradientCheck(policy.params, () => ppoLoss(policy, mb, c).loss, 18, 6)) {
      expect(Math.abs(check.analytic - check.numeric), `${check.param}[${check.index}]`).toBeLessThan(2e-2 * Math.abs(check.analytic) + 1e-4);
    }
  });

  it('PPO loss: each term alone (policy term with c_v = 0, value term through the value head)', () => {
    const { policy, mb, clip, valueClip } = ppoSetup();
    expectMatch(directionalGradientCheck(policy.params, () => ppoLoss(policy, mb, { clip, valueClip, valueCoef: 0 }).loss, 19));
    // The value term does not depend on the LM head.
    const valueParams = Object.fromEntries(Object.entries(policy.params).filter(([name]) => name !== 'lm_head'));
    expectMatch(directionalGradientCheck(valueParams, () => ppoLoss(policy, mb, { clip, valueClip, valueCoef: 1 }).valueLoss, 20));
  });
});
