import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { cloneModel, coordinateGradientCheck, directionalGradientCheck, forwardHidden, initBackend, initParams, lmLogits, nativeScore, nativeScoreSharedPrompts, StreamingScorer, Trainer, useNativeKernels, type Model, type ModelConfigInput } from '@xyp/engine';
import { createRng, nextNormal } from '@xyp/random';
import { ppoAdvantages } from './advantages';
import { klK3 } from './kl';
import { klEstimate } from './kl';
import { packRollouts, ppoLoss, ppoRound, referenceLogProbs, sampledExperience, scoreRollouts, scoreRolloutsByLength, scoreRolloutsTfjs, type PpoMinibatch, type RewardFn, type RolloutToScore } from './ppo';

beforeAll(async () => {
  await initBackend();
});

describe('PPO', () => {
  it('raises the mean of a verifiable reward while the measured KL stays inside the target band', async () => {
    // Reward: the fraction of response tokens equal to 3 (about 1/8 for the initial policy).
    const reward: RewardFn = async (batch) => batch.map(({ response }) => response.filter((t) => t === 3).length / response.length);
    const policy = initParams({ vocabSize: 8, contextLength: 16, layers: 1, width: 16, heads: 2, valueHead: true }, 1);
    const reference = cloneModel(policy);
    const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 100, weightDecay: 0 }, 2);
    const prompts = [[1], [2], [4], [5]];
    const rounds = [];
    for (let round = 0; round < 10; round++) {
      const r = await ppoRound(trainer, reference, prompts, reward, { klCoef: 0.1, samplesPerPrompt: 8, maxTokens: 6, epochs: 2, minibatches: 2 });
      rounds.push(r);
    }
    // Round to round the mean reward is noisy (32 rollouts); the last five rounds, averaged, sit well
    // above the first (about 1/8 → about 0.4 under the KL penalty, whatever the seeds).
    const first = rounds[0].meanReward;
    const last = rounds.slice(5).reduce((sum, r) => sum + r.meanReward, 0) / 5;
    expect(first).toBeLessThan(0.3);
    expect(last).toBeGreaterThan(first + 0.15);
    // Target band of the per-sequence KL to the reference: [0, 3] nats for 6-token responses.
    for (const r of rounds) {
      expect(r.meanKl).toBeGreaterThanOrEqual(-0.1);
      expect(r.meanKl).toBeLessThanOrEqual(3);
    }
  });
});

describe('PPO round: asynchronous batched reward, progress, cancel', () => {
  const config: ModelConfigInput = { vocabSize: 8, contextLength: 16, layers: 1, width: 16, heads: 2, valueHead: true };
  const prompts = [[1], [2, 4]];
  const settings = { klCoef: 0.1, samplesPerPrompt: 3, maxTokens: 5, epochs: 2, minibatches: 3 };

  it('scores every rollout of the round in one batched call, in order, and reports each update', async () => {
    const policy = initParams(config, 3);
    const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 12, weightDecay: 0 }, 4);
    const calls: RolloutToScore[][] = [];
    const reward: RewardFn = async (batch) => {
      calls.push([...batch]);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return batch.map((r) => r.response.length / 5 + r.promptIndex);
    };
    const done: number[] = [];
    const rewards: (number | undefined)[] = [];
    const result = await ppoRound(trainer, cloneModel(policy), prompts, reward, settings, {
      totalSteps: 12,
      onProgress: (p) => {
        done.push(p.done);
        rewards.push(p.meanReward);
      },
    });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toHaveLength(result.rollouts);
    for (const r of calls[0]) expect(r.prompt).toEqual(prompts[r.promptIndex]);
    // 6 rollouts in 3 minibatches, 2 epochs: 6 updates.
    expect(done).toEqual([1, 2, 3, 4, 5, 6]);
    const expectedMean = calls[0].reduce((s, r) => s + r.response.length / 5 + r.promptIndex, 0) / calls[0].length;
    expect(result.meanReward).toBeCloseTo(expectedMean, 10);
    // Each update's progress carries the round's mean reward (the worker's xyp_reward_mean gauge).
    expect(rewards).toHaveLength(6);
    for (const r of rewards) expect(r).toBeCloseTo(expectedMean, 10);
  });

  it('logs every update (losses, KL, entropy, clip fraction, approximate KL) and times the phases of the round', async () => {
    const policy = initParams(config, 9);
    const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 12, weightDecay: 0 }, 10);
    const reference = cloneModel(policy);
    const reward: RewardFn = async (batch) => batch.map((r) => r.response.filter((t) => t === 3).length);
    const result = await ppoRound(trainer, reference, prompts, reward, { ...settings, klEstimator: 'k3' });
    expect(result.steps.map((s) => s.update)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(result.steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const s of result.steps) {
      for (const x of Object.values(s)) expect(Number.isFinite(x)).toBe(true);
      expect(s.entropy).toBeGreaterThan(0);
      expect(s.entropy).toBeLessThanOrEqual(Math.log(8) + 1e-5);
      expect(s.clipFraction).toBeGreaterThanOrEqual(0);
      expect(s.clipFraction).toBeLessThanOrEqual(1);
      expect(s.approxKl).toBeGreaterThanOrEqual(-1e-6);
      // k3 is ≥ 0 token by token.
      expect(s.klMean).toBeGreaterThanOrEqual(-1e-6);
    }
    // The first update runs at θ_old = the reference: ratio 1 everywhere, KL 0, nothing clipped.
    expect(result.steps[0].approxKl).toBeCloseTo(0, 5);
    expect(result.steps[0].klMean).toBeCloseTo(0, 5);
    expect(result.steps[0].clipFraction).toBe(0);
    const mean = (k: 'entropy' | 'clipFraction' | 'policyLoss' | 'valueLoss') => result.steps.reduce((a, s) => a + s[k], 0) / result.steps.length;
    expect(result.entropy).toBeCloseTo(mean('entropy'), 6);
    expect(result.clipFraction).toBeCloseTo(mean('clipFraction'), 6);
    expect(result.policyLoss).toBeCloseTo(mean('policyLoss'), 6);
    expect(result.valueLoss).toBeCloseTo(mean('valueLoss'), 6);
    expect(result.meanResponseLength).toBeCloseTo(result.responseTokens / result.rollouts, 10);
    expect(result.meanResponseLength).toBeGreaterThan(0);
    expect(result.meanResponseLength).toBeLessThanOrEqual(5);
    // The rollouts were measured at the reference itself: k3 (and k1) are 0.
    expect(result.meanKl).toBeCloseTo(0, 5);
    const t = result.timings;
    for (const x of Object.values(t)) expect(x).toBeGreaterThanOrEqual(0);
    expect(t.rolloutSeconds).toBeCloseTo(t.samplingSeconds + t.scoringSeconds + t.experienceSeconds, 6);
    expect(t.updateSeconds).toBeGreaterThan(0);
  });

  it('with maxKl: a round whose rollouts are above it makes no update and says so; one within it trains', async () => {
    const policy = initParams(config, 7);
    // A reference other than the policy: the rollouts' KL is well above 0.
    const reference = initParams(config, 8);
    const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 12, weightDecay: 0 }, 9);
    const reward: RewardFn = async (batch) => batch.map((r) => r.response.length);
    const before = Object.fromEntries(Object.entries(policy.params).map(([name, v]) => [name, Array.from(v.dataSync())]));
    const over = await ppoRound(trainer, reference, prompts, reward, settings, { maxKl: 1e-6 });
    expect(over.meanKl).toBeGreaterThan(1e-6);
    expect(over.overKlBound).toBe(true);
    expect(over.steps).toEqual([]);
    expect(trainer.step).toBe(0);
    for (const [name, v] of Object.entries(policy.params)) expect(Array.from(v.dataSync())).toEqual(before[name]);
    const within = await ppoRound(trainer, reference, prompts, reward, settings, { maxKl: 1e6 });
    expect(within.overKlBound).toBeUndefined();
    expect(within.steps.length).toBeGreaterThan(0);
    expect(trainer.step).toBe(within.steps.length);
  });

  it('fails with a clear message when the reward returns the wrong number of scores', async () => {
    const policy = initParams(config, 5);
    const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 4 }, 6);
    await expect(ppoRound(trainer, cloneModel(policy), prompts, async () => [1], settings)).rejects.toThrow(/PPO reward: returned 1 scores for a batch of \d+/);
  });

  it('cancel: an abort during the reward call or an update stops the round before the next update', async () => {
    const policy = initParams(config, 7);
    const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 12 }, 8);
    const cancel = new AbortController();
    const slowReward: RewardFn = (batch, options) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => resolve(batch.map(() => 0)), 10_000);
        options?.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(options.signal?.reason);
        });
      });
    setTimeout(() => cancel.abort(new Error('round cancelled')), 20);
    await expect(ppoRound(trainer, cloneModel(policy), prompts, slowReward, settings, { signal: cancel.signal })).rejects.toThrow('round cancelled');
    expect(trainer.step).toBe(0);

    const during = new AbortController();
    const reward: RewardFn = async (batch) => batch.map(() => 1);
    await expect(
      ppoRound(trainer, cloneModel(policy), prompts, reward, settings, { signal: during.signal, onStep: (r) => void (r.step === 2 && during.abort(new Error('stop now'))) }),
    ).rejects.toThrow('stop now');
    expect(trainer.step).toBe(2);
  });
});

const tiny: ModelConfigInput = { vocabSize: 11, contextLength: 8, layers: 2, width: 8, heads: 2 };

function expectMatch({ analytic, numeric }: { analytic: number; numeric: number }): void {
  expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
  expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.abs(analytic) + 1e-4);
}

describe('finite-difference gradient checks of the PPO loss on a tiny model', () => {
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
    const rng = createRng(15);
    const jitter = (model: Model, name: string, scale: number): void => {
      const v = model.params[name];
      const moved = tf.tidy(() => tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => nextNormal(rng) * scale), v.shape)));
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
    return { policy, mb: { ...rollouts, oldLogp, refLogp, oldValues, advantages, returns }, clip: 0.2, valueClip: 0.2 };
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

    // The statistics ppoLoss reads off its own forward pass match what a separate pass gives.
    const stats = tf.tidy(() => {
      const t = ppoLoss(policy, mb, { clip, valueClip, valueCoef: 0.5, klEstimator: 'k3' });
      return { clipFraction: t.clipFraction.dataSync()[0], entropy: t.entropy.dataSync()[0], approxKl: t.approxKl.dataSync()[0], klMean: t.klMean.dataSync()[0] };
    });
    const separate = tf.tidy(() => {
      const hidden = forwardHidden(policy, { ids: mb.ids, batch: mb.batch, seq: mb.seq });
      const logits = lmLogits(policy, hidden);
      const probs = tf.softmax(logits).arraySync() as number[][];
      const logp = scoreRollouts(policy, mb, false).logp.dataSync();
      let entropy = 0;
      let approxKl = 0;
      let klMean = 0;
      for (let n = 0; n < mb.mask.length; n++) {
        if (!mb.mask[n]) continue;
        entropy -= probs[n].reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0);
        const logRatio = logp[n] - mb.oldLogp[n];
        approxKl += Math.exp(logRatio) - 1 - logRatio;
        klMean += klK3(logp[n], mb.refLogp[n]);
      }
      return { entropy: entropy / responseTokens, approxKl: approxKl / responseTokens, klMean: klMean / responseTokens };
    });
    expect(stats.clipFraction).toBeCloseTo(policyClipped / responseTokens, 6);
    expect(stats.entropy).toBeCloseTo(separate.entropy, 4);
    expect(stats.approxKl).toBeCloseTo(separate.approxKl, 5);
    expect(stats.klMean).toBeCloseTo(separate.klMean, 5);

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

describe('scoreRollouts on the native addon', () => {
  it('equals the TF.js forward pass (log-probabilities and values) on packed rollouts', (ctx) => {
    const policy = initParams({ vocabSize: 16, contextLength: 16, layers: 2, width: 16, heads: 2, valueHead: true }, 21);
    const rng = createRng(22);
    for (const v of Object.values(policy.params)) {
      const moved = tf.tidy(() => tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => nextNormal(rng) * 0.3), v.shape)));
      v.assign(moved);
      moved.dispose();
    }
    const reference = cloneModel(policy);
    const rollouts = packRollouts(
      [[1, 2], [3], [4, 5, 6, 7]],
      [
        { prompt: 0, tokens: [3, 4, 5, 9] },
        { prompt: 1, tokens: [7, 8] },
        { prompt: 2, tokens: [9, 10, 1, 2, 15, 11] },
        { prompt: 0, tokens: [6] },
      ],
    );
    if (!nativeScore(policy, rollouts, true)) return ctx.skip();
    const read = (f: () => { logp: tf.Tensor1D; values?: tf.Tensor1D }) =>
      tf.tidy(() => {
        const { logp, values } = f();
        return { logp: logp.dataSync() as Float32Array, values: values?.dataSync() as Float32Array | undefined };
      });
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
    const tfjs = read(() => scoreRolloutsTfjs(policy, rollouts, true));
    const wasm = (() => {
      const previous = useNativeKernels(false);
      try {
        return read(() => scoreRollouts(policy, rollouts, true));
      } finally {
        useNativeKernels(previous);
      }
    })();
    const native = read(() => scoreRollouts(policy, rollouts, true));
    for (const want of [tfjs, wasm]) {
      expect(native.logp).toHaveLength(want.logp.length);
      expect(maxDiff(native.logp, want.logp)).toBeLessThan(1e-4);
      expect(maxDiff(native.values!, want.values!)).toBeLessThan(1e-4);
    }
    const ref = read(() => scoreRollouts(reference, rollouts, false));
    expect(ref.values).toBeUndefined();
    expect(maxDiff(ref.logp, read(() => scoreRolloutsTfjs(reference, rollouts, false)).logp)).toBeLessThan(1e-4);
  });

  it('with only the response mask, gives the same log-probabilities there and 0 elsewhere (rows past one LM-head chunk)', (ctx) => {
    const model = initParams({ vocabSize: 16, contextLength: 16, layers: 1, width: 16, heads: 2 }, 31);
    const rng = createRng(32);
    const prompts = Array.from({ length: 6 }, (_, i) => Array.from({ length: 2 + (i % 4) }, () => 1 + Math.floor(rng.nextFloat() * 15)));
    // 30 rollouts of up to 10 tokens: about 400 packed positions, more than the native LM head's 128-row chunk.
    const samples = Array.from({ length: 30 }, (_, k) => ({ prompt: k % 6, tokens: Array.from({ length: 1 + (k % 10) }, () => Math.floor(rng.nextFloat() * 16)) }));
    const r = packRollouts(prompts, samples);
    if (!nativeScore(model, r, false)) return ctx.skip();
    const all = tf.tidy(() => scoreRollouts(model, r, false).logp.dataSync() as Float32Array);
    const only = tf.tidy(() => scoreRollouts(model, r, false, r.mask).logp.dataSync() as Float32Array);
    let wanted = 0;
    r.mask.forEach((m, i) => {
      if (m) {
        wanted += 1;
        expect(Math.abs(only[i] - all[i])).toBeLessThan(1e-5);
      } else expect(only[i]).toBe(0);
    });
    expect(wanted).toBeGreaterThan(128);
    expect(() => nativeScore(model, { ...r, targets: r.targets.map(() => -2) }, false)).toThrow(/outside \[-1, V\)/);
  });
});

describe('scoreRolloutsByLength: the reference pass over each row\'s own length', () => {
  it('equals the whole-batch pass at every response position, with 0 elsewhere, for any grouping', () => {
    const model = initParams({ vocabSize: 16, contextLength: 24, layers: 2, width: 16, heads: 2 }, 41);
    const rng = createRng(42);
    // Prompts of 1 to 13 tokens and responses of 1 to 7: rows padded to the longest waste most positions.
    const prompts = Array.from({ length: 7 }, (_, i) => Array.from({ length: 1 + 2 * i }, () => 1 + Math.floor(rng.nextFloat() * 15)));
    const samples = Array.from({ length: 21 }, (_, k) => ({ prompt: k % 7, tokens: Array.from({ length: 1 + (k % 7) }, () => Math.floor(rng.nextFloat() * 16)) }));
    const r = packRollouts(prompts, samples);
    const lengths = samples.map((x) => prompts[x.prompt].length + x.tokens.length);
    const whole = tf.tidy(() => scoreRollouts(model, r, false, r.mask).logp.dataSync() as Float32Array);
    const tfjs = tf.tidy(() => scoreRolloutsTfjs(model, r, false).logp.dataSync() as Float32Array);
    for (const fill of [1, 0.9, 0.5, 0]) {
      const grouped = scoreRolloutsByLength(model, r, lengths, r.mask, fill);
      expect(grouped).toHaveLength(r.batch * r.seq);
      r.mask.forEach((m, i) => {
        if (m) {
          expect(Math.abs(grouped[i] - whole[i])).toBeLessThan(1e-5);
          // And against the TF.js forward pass, independent of the native kernels.
          expect(Math.abs(grouped[i] - tfjs[i])).toBeLessThan(1e-4);
        } else if (whole[i] === 0) expect(grouped[i]).toBe(0);
      });
    }
    expect(() => scoreRolloutsByLength(model, r, lengths.slice(1), r.mask)).toThrow('20 lengths for 21 rows');
  });
});

describe('referenceLogProbs: the reference pass with each prompt computed once for its samples', () => {
  /** A model with weights moved off the init, so that positions and context matter. */
  const moved = (config: ModelConfigInput, seed: number): Model => {
    const model = initParams(config, seed);
    const rng = createRng(seed + 100);
    for (const v of Object.values(model.params)) {
      const next = tf.tidy(() => tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => nextNormal(rng) * 0.3), v.shape)));
      v.assign(next);
      next.dispose();
    }
    return model;
  };

  it('equals scoreRolloutsByLength and the TF.js pass at every response position, 0 elsewhere (rotary and learned positions)', (ctx) => {
    for (const positions of ['rotary', 'learned'] as const) {
      const model = moved({ vocabSize: 16, contextLength: 24, layers: 2, width: 16, heads: 2, positions }, 51);
      const rng = createRng(52);
      // 5 prompts of 1 to 13 tokens, 4 samples each of 1 to 9 tokens, in decodeSteps' order (prompt-major).
      const prompts = Array.from({ length: 5 }, (_, i) => Array.from({ length: 1 + 3 * i }, () => 1 + Math.floor(rng.nextFloat() * 15)));
      const samples = Array.from({ length: 20 }, (_, k) => ({ prompt: Math.floor(k / 4), tokens: Array.from({ length: 1 + ((k * 5) % 9) }, () => Math.floor(rng.nextFloat() * 16)) }));
      if (!nativeScoreSharedPrompts(model, prompts, samples)) return ctx.skip();
      const r = packRollouts(prompts, samples);
      const got = referenceLogProbs(model, prompts, samples, r);
      const byLength = scoreRolloutsByLength(model, r, samples.map((s) => prompts[s.prompt].length + s.tokens.length), r.mask);
      const tfjs = tf.tidy(() => scoreRolloutsTfjs(model, r, false).logp.dataSync() as Float32Array);
      expect(got).toHaveLength(r.batch * r.seq);
      let wanted = 0;
      r.mask.forEach((m, i) => {
        if (m) {
          wanted += 1;
          expect(Math.abs(got[i] - byLength[i]), `${positions} position ${i}`).toBeLessThan(1e-4);
          expect(Math.abs(got[i] - tfjs[i]), `${positions} position ${i}`).toBeLessThan(1e-4);
        } else expect(got[i]).toBe(0);
      });
      expect(wanted).toBe(samples.reduce((a, s) => a + s.tokens.length, 0));
      for (const p of Object.values(model.params)) p.dispose();
    }
  });

  it('ppoRound: the reference log-probabilities behind its KL are those of scoreRolloutsByLength', async () => {
    // A reference apart from the policy, an end token (responses of 0 to 6 tokens; empty ones are dropped) and prompts of 1 to 5 tokens.
    const config: ModelConfigInput = { vocabSize: 8, contextLength: 16, layers: 2, width: 16, heads: 2, valueHead: true };
    const policy = initParams(config, 61);
    const reference = moved(config, 62);
    const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 4, weightDecay: 0 }, 63);
    const prompts = [[1, 2, 3], [4], [5, 6, 7, 1, 2], [3, 5]];
    let expectedKl = Number.NaN;
    let rollouts: RolloutToScore[] = [];
    // The reward runs after sampling and before any update: the policy is still π_old then.
    const reward: RewardFn = async (batch) => {
      rollouts = [...batch];
      const samples = batch.map((x) => ({ prompt: x.promptIndex, tokens: x.response }));
      const r = packRollouts(prompts, samples);
      const refLogp = scoreRolloutsByLength(reference, r, samples.map((s) => prompts[s.prompt].length + s.tokens.length), r.mask);
      const oldLogp = tf.tidy(() => scoreRolloutsTfjs(policy, r, false).logp.dataSync() as Float32Array);
      let sum = 0;
      r.mask.forEach((m, i) => (sum += m ? klEstimate('k3', oldLogp[i], refLogp[i]) : 0));
      expectedKl = sum / batch.length;
      return batch.map(() => 0);
    };
    const result = await ppoRound(trainer, reference, prompts, reward, { klCoef: 0.1, klEstimator: 'k3', samplesPerPrompt: 4, maxTokens: 6, eos: 0, epochs: 1, minibatches: 2 });
    expect(new Set(rollouts.map((x) => x.response.length)).size).toBeGreaterThan(2);
    expect(new Set(rollouts.map((x) => x.promptIndex)).size).toBe(prompts.length);
    expect(expectedKl).toBeGreaterThan(0.1);
    expect(Math.abs(result.meanKl - expectedKl)).toBeLessThan(1e-4 * (1 + expectedKl));
    trainer.dispose();
    for (const p of Object.values(reference.params)) p.dispose();
  });
});

describe('ppoRound: the reference streamed while the policy samples', () => {
  it('gives the rollouts, rewards and KL of the reference scored after sampling', async (ctx) => {
    const config: ModelConfigInput = { vocabSize: 8, contextLength: 16, layers: 2, width: 16, heads: 2, valueHead: true };
    const probe = initParams(config, 70);
    const scorer = StreamingScorer.open(probe, [[1]], [0], 1);
    scorer?.abandon();
    for (const p of Object.values(probe.params)) p.dispose();
    if (!scorer) return ctx.skip();
    const prompts = [[1, 2, 3], [4], [5, 6, 7, 1, 2], [3, 5]];
    const run = async (streamReference: boolean) => {
      const policy = initParams(config, 71);
      const reference = initParams(config, 72);
      const trainer = new Trainer(policy, { lr: 1e-2, warmupSteps: 0, totalSteps: 4, weightDecay: 0 }, 73);
      const seen: number[][] = [];
      const reward: RewardFn = async (batch) => batch.map((x) => (seen.push(x.response), x.response.length / 6));
      const result = await ppoRound(trainer, reference, prompts, reward, { klCoef: 0.1, klEstimator: 'k1', samplesPerPrompt: 3, maxTokens: 6, eos: 0, epochs: 1, minibatches: 2 }, { streamReference });
      trainer.dispose();
      for (const p of Object.values(reference.params)) p.dispose();
      return { result, seen };
    };
    const streamed = await run(true);
    const after = await run(false);
    expect(streamed.seen).toEqual(after.seen);
    expect(new Set(streamed.seen.map((x) => x.length)).size).toBeGreaterThan(2);
    expect(streamed.result.meanReward).toBe(after.result.meanReward);
    expect(Math.abs(after.result.meanKl)).toBeGreaterThan(0.05);
    expect(Math.abs(streamed.result.meanKl - after.result.meanKl)).toBeLessThan(1e-5 * (1 + Math.abs(after.result.meanKl)));
    expect(Math.abs(streamed.result.policyLoss - after.result.policyLoss)).toBeLessThan(1e-4);
  });
});

describe('sampledExperience: what the sampler returned, in the packed layout', () => {
  const prompts = [[7, 8, 9], [5]];
  const samples = [
    { prompt: 0, tokens: [1, 2], finishReason: 'stop' as const, logprobs: [-0.5, -1.5], values: [0.25, 0.75] },
    { prompt: 1, tokens: [3, 4, 6], finishReason: 'length' as const, logprobs: [-2, -3, -4], values: [1, 2, 3] },
  ];

  it('puts token j of a response at position (prompt length − 1 + j), where packRollouts predicts it, and 0 elsewhere', () => {
    const r = packRollouts(prompts, samples);
    expect(r.seq).toBe(5);
    const { oldLogp, oldValues } = sampledExperience(prompts, samples, r);
    // Row 0: prompt 7 8 9, response 1 2 → positions 2 and 3 predict 1 and 2. Row 1: prompt 5 → positions 0, 1, 2.
    expect(Array.from(oldLogp)).toEqual([0, 0, -0.5, -1.5, 0, -2, -3, -4, 0, 0]);
    expect(Array.from(oldValues)).toEqual([0, 0, 0.25, 0.75, 0, 1, 2, 3, 0, 0]);
    // The packed mask marks exactly those positions.
    expect(Array.from(r.mask)).toEqual([0, 0, 1, 1, 0, 1, 1, 1, 0, 0]);
  });

  it('refuses samples without a log-probability and a value per token', () => {
    const missing = [{ ...samples[0], logprobs: [-0.5] }];
    expect(() => sampledExperience(prompts, missing, packRollouts(prompts, missing))).toThrow(/rollout 0 came without a log-probability/);
  });
});
