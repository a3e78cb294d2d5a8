/**
 * AdamW and its schedule against values worked out here with plain numbers (Loshchilov & Hutter,
 * "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2): one and two steps, with bias
 * correction, decoupled weight decay on matrices only, and global-norm clipping — on the TF.js
 * kernels and on the native fused update.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, useNativeKernels } from './backend';
import type { Params } from './model';
import { AdamW, OptimConfig, learningRate } from './optim';

beforeAll(async () => {
  await initBackend();
});

/** One AdamW step on plain numbers, for one parameter tensor. */
function adamwByHand(
  p: number[],
  g: number[],
  m: number[],
  v: number[],
  t: number,
  c: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number },
): { p: number[]; m: number[]; v: number[] } {
  const m2 = m.map((mi, i) => c.beta1 * mi + (1 - c.beta1) * g[i]);
  const v2 = v.map((vi, i) => c.beta2 * vi + (1 - c.beta2) * g[i] * g[i]);
  const p2 = p.map((pi, i) => {
    const mHat = m2[i] / (1 - c.beta1 ** t);
    const vHat = v2[i] / (1 - c.beta2 ** t);
    return pi - c.lr * (mHat / (Math.sqrt(vHat) + c.eps) + c.weightDecay * pi);
  });
  return { p: p2, m: m2, v: v2 };
}

const hyper = { lr: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
/** A constant learning rate (minLr = lr), no clipping: the update rule alone. */
const constant = OptimConfig.parse({ ...hyper, minLr: hyper.lr, warmupSteps: 0, totalSteps: 10, clipNorm: 0 });

function params(): Params {
  return {
    'layers.0.wq': tf.variable(tf.tensor([0.5, -1.0, 2.0]), true, `optim-test/${Math.random()}/wq`),
    norm_f: tf.variable(tf.tensor([1.0, 0.8, 1.2]), true, `optim-test/${Math.random()}/norm`),
  };
}

const read = (t: tf.Tensor): number[] => Array.from(t.dataSync());
function expectClose(actual: number[], expected: number[], what: string): void {
  expected.forEach((x, i) => expect(actual[i], `${what}[${i}]`).toBeCloseTo(x, 5));
}

const paths: [string, boolean][] = [
  ['TF.js kernels', false],
  ['native fused update when built', true],
];

describe.each(paths)('AdamW (%s)', (_name, native) => {
  let previous = true;
  beforeAll(() => {
    previous = useNativeKernels(native);
    return () => void useNativeKernels(previous);
  });

  const g1 = { 'layers.0.wq': [0.3, -0.2, 0.05], norm_f: [0.1, 0.4, -0.3] };
  const g2 = { 'layers.0.wq': [-0.1, 0.25, 0.5], norm_f: [0.2, -0.1, 0.05] };

  it('first step: bias-corrected moments give p − η(g/(|g| + ε) + λp); norms take no decay', () => {
    const p = params();
    const opt = new AdamW(constant, p);
    opt.apply({ 'layers.0.wq': tf.tensor(g1['layers.0.wq']), norm_f: tf.tensor(g1.norm_f) });
    const wq = adamwByHand([0.5, -1.0, 2.0], g1['layers.0.wq'], [0, 0, 0], [0, 0, 0], 1, hyper);
    const norm = adamwByHand([1.0, 0.8, 1.2], g1.norm_f, [0, 0, 0], [0, 0, 0], 1, { ...hyper, weightDecay: 0 });
    expectClose(read(p['layers.0.wq']), wq.p, 'wq');
    expectClose(read(p.norm_f), norm.p, 'norm_f');
    // At step 1, m̂ = g and v̂ = g²: the step is η·sign(g) (+ decay), e.g. 0.5 − 0.1·(1 + 0.1·0.5).
    expect(read(p['layers.0.wq'])[0]).toBeCloseTo(0.5 - 0.1 * (1 + 0.05), 5);
    expectClose(read(opt.m['layers.0.wq']), wq.m, 'm');
    expectClose(read(opt.v['layers.0.wq']), wq.v, 'v');
  });

  it('second step: moments carried over, bias correction 1 − β^2', () => {
    const p = params();
    const opt = new AdamW(constant, p);
    opt.apply({ 'layers.0.wq': tf.tensor(g1['layers.0.wq']), norm_f: tf.tensor(g1.norm_f) });
    opt.apply({ 'layers.0.wq': tf.tensor(g2['layers.0.wq']), norm_f: tf.tensor(g2.norm_f) });
    const wq1 = adamwByHand([0.5, -1.0, 2.0], g1['layers.0.wq'], [0, 0, 0], [0, 0, 0], 1, hyper);
    const wq2 = adamwByHand(wq1.p, g2['layers.0.wq'], wq1.m, wq1.v, 2, hyper);
    const n1 = adamwByHand([1.0, 0.8, 1.2], g1.norm_f, [0, 0, 0], [0, 0, 0], 1, { ...hyper, weightDecay: 0 });
    const n2 = adamwByHand(n1.p, g2.norm_f, n1.m, n1.v, 2, { ...hyper, weightDecay: 0 });
    expect(opt.step).toBe(2);
    expectClose(read(p['layers.0.wq']), wq2.p, 'wq');
    expectClose(read(p.norm_f), n2.p, 'norm_f');
    expectClose(read(opt.m['layers.0.wq']), wq2.m, 'm');
    expectClose(read(opt.v['layers.0.wq']), wq2.v, 'v');
  });

  it('scales every gradient by c/‖G‖ when the global norm ‖G‖ exceeds the clip c, and reports ‖G‖', () => {
    const p = params();
    const opt = new AdamW({ ...constant, clipNorm: 0.25 }, p);
    const gradNorm = Math.hypot(...g2['layers.0.wq'], ...g2.norm_f);
    const { gradNorm: reported, lr } = opt.apply({ 'layers.0.wq': tf.tensor(g2['layers.0.wq']), norm_f: tf.tensor(g2.norm_f) });
    expect(reported).toBeCloseTo(gradNorm, 5);
    expect(lr).toBeCloseTo(0.1, 12);
    const scale = 0.25 / (gradNorm + 1e-6);
    const wq = adamwByHand([0.5, -1.0, 2.0], g2['layers.0.wq'].map((x) => x * scale), [0, 0, 0], [0, 0, 0], 1, hyper);
    expectClose(read(opt.m['layers.0.wq']), wq.m, 'm');
    expectClose(read(opt.v['layers.0.wq']), wq.v, 'v');
    expectClose(read(p['layers.0.wq']), wq.p, 'wq');
  });
});

describe('learning-rate schedule', () => {
  it('warms up linearly to lr, then decays along a cosine to minLr at totalSteps and stays there', () => {
    const c = OptimConfig.parse({ lr: 1e-3, minLr: 1e-4, warmupSteps: 4, totalSteps: 24 });
    expect(learningRate(c, 1)).toBeCloseTo(0.25e-3, 12);
    expect(learningRate(c, 2)).toBeCloseTo(0.5e-3, 12);
    expect(learningRate(c, 4)).toBeCloseTo(1e-3, 12);
    // Halfway through the 20 decay steps the cosine is at 0: the mean of lr and minLr.
    expect(learningRate(c, 14)).toBeCloseTo((1e-3 + 1e-4) / 2, 12);
    // A quarter of the way: minLr + (lr − minLr)·(1 + cos(π/4))/2.
    expect(learningRate(c, 9)).toBeCloseTo(1e-4 + 0.9e-3 * (1 + Math.SQRT1_2) / 2, 12);
    expect(learningRate(c, 24)).toBeCloseTo(1e-4, 12);
    expect(learningRate(c, 100)).toBeCloseTo(1e-4, 12);
  });
});
