/** Finite-difference gradient checks for tests and diagnostics. */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './model';
import { Rng } from './rng';

/**
 * Compares the analytic directional derivative `⟨∇L(θ), d⟩` with the central difference
 * central difference `D(ε) = (L(θ + εd) − L(θ − εd)) / 2ε`, Richardson-extrapolated to
 * `(4·D(ε/2) − D(ε)) / 3` (error O(ε⁴) instead of O(ε²), so ε can stay large against float32 rounding),
 * along a seeded random direction d of unit norm per parameter element scale over every trainable
 * parameter.
 */
export function directionalGradientCheck(params: Params, loss: () => tf.Scalar, seed: number, eps = 1e-3): { analytic: number; numeric: number } {
  const vars = Object.values(params).filter((v) => v.trainable);
  const rng = new Rng(seed);
  const base = vars.map((v) => tf.clone(v));
  const dirs = vars.map((v) => tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal()), v.shape));
  const { value, grads } = tf.variableGrads(loss, vars);
  let analytic = 0;
  vars.forEach((v, i) => {
    analytic += tf.tidy(() => tf.sum(tf.mul(grads[v.name], dirs[i])).dataSync()[0]);
  });
  value.dispose();
  for (const g of Object.values(grads)) g.dispose();
  const at = (scale: number): number => {
    vars.forEach((v, i) => v.assign(tf.tidy(() => tf.add(base[i], tf.mul(dirs[i], scale)))));
    return tf.tidy(() => loss().dataSync()[0]);
  };
  const central = (h: number): number => (at(h) - at(-h)) / (2 * h);
  const numeric = (4 * central(eps / 2) - central(eps)) / 3;
  vars.forEach((v, i) => v.assign(base[i]));
  for (const t of [...base, ...dirs]) t.dispose();
  return { analytic, numeric };
}
