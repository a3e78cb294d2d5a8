/** Finite-difference gradient checks for tests and diagnostics. */
import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './model';
import { SplitMix32, nextNormal, shuffleInPlace } from '@xyp/random';

/**
 * Compares the analytic directional derivative `⟨∇L(θ), d⟩` with the central difference
 * `D(ε) = (L(θ + εd) − L(θ − εd)) / 2ε`, Richardson-extrapolated to
 * `(4·D(ε/2) − D(ε)) / 3` (error O(ε⁴) instead of O(ε²), so ε can stay large against float32 rounding),
 * along a seeded random direction d of unit norm per parameter element scale over every trainable
 * parameter.
 */
export function directionalGradientCheck(params: Params, loss: () => tf.Scalar, seed: number, eps = 1e-3): { analytic: number; numeric: number } {
  const vars = Object.values(params).filter((v) => v.trainable);
  const rng = new SplitMix32(seed);
  const base = vars.map((v) => tf.clone(v));
  const dirs = vars.map((v) => tf.tensor(Float32Array.from({ length: v.size }, () => nextNormal(rng)), v.shape));
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

function assignValues(v: tf.Variable, values: Float32Array): void {
  const t = tf.tensor(values, v.shape);
  // The variable takes a reference to the new data; this handle can go.
  v.assign(t);
  t.dispose();
}

export interface CoordinateCheck {
  param: string;
  index: number;
  analytic: number;
  numeric: number;
}

/**
 * Per-coordinate check: `count` parameter elements drawn (seeded) among those with `|∂L/∂θ_i| ≥
 * minGrad` (an element with a tiny gradient would compare float32 rounding noise), each compared
 * with the Richardson-extrapolated central difference along that one coordinate,
 * `(4·D(ε/2) − D(ε)) / 3` with `D(h) = (L(θ + h·e_i) − L(θ − h·e_i)) / 2h`.
 */
export function coordinateGradientCheck(params: Params, loss: () => tf.Scalar, seed: number, count: number, minGrad = 5e-3, eps = 5e-3): CoordinateCheck[] {
  const named = Object.entries(params).filter(([, v]) => v.trainable);
  const { value, grads } = tf.variableGrads(
    loss,
    named.map(([, v]) => v),
  );
  const candidates: { param: string; index: number; analytic: number }[] = [];
  for (const [name, v] of named) {
    const g = grads[v.name].dataSync();
    for (let i = 0; i < g.length; i++) if (Math.abs(g[i]) >= minGrad) candidates.push({ param: name, index: i, analytic: g[i] });
  }
  value.dispose();
  for (const g of Object.values(grads)) g.dispose();
  if (candidates.length < count) throw new Error(`coordinateGradientCheck: only ${candidates.length} coordinates have |gradient| ≥ ${minGrad}, ${count} asked`);
  const picked = shuffleInPlace(candidates, new SplitMix32(seed)).slice(0, count);
  return picked.map(({ param, index, analytic }) => {
    const v = params[param];
    const base = v.dataSync().slice() as Float32Array;
    const at = (h: number): number => {
      const moved = base.slice();
      moved[index] += h;
      assignValues(v, moved);
      return tf.tidy(() => loss().dataSync()[0]);
    };
    const central = (h: number): number => (at(h) - at(-h)) / (2 * h);
    const numeric = (4 * central(eps / 2) - central(eps)) / 3;
    assignValues(v, base);
    return { param, index, analytic, numeric };
  });
}
