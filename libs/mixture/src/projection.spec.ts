import { describe, expect, it } from 'vitest';
import { createRng, type Rng } from '@xyp/random';
import { projectOntoCappedSimplex } from './projection';

function randomCase(rng: Rng): { v: number[]; lo: number[]; hi: number[] } {
  const n = 1 + rng.nextInt(12);
  const lo: number[] = [];
  const hi: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const a = rng.nextFloat() * (1.6 / n);
    const b = a + rng.nextFloat() * (2 / n);
    const frozen = rng.nextFloat() < 0.1;
    lo.push(a);
    hi.push(frozen ? a : b);
  }
  // Rescale so that Σlo ≤ 1 ≤ Σhi.
  const sumLo = lo.reduce((x, y) => x + y, 0);
  const sumHi = hi.reduce((x, y) => x + y, 0);
  const shrink = sumLo > 1 ? 0.999 / sumLo : 1;
  for (let i = 0; i < n; i += 1) lo[i] *= shrink;
  const grow = sumHi * shrink < 1 ? 1.001 / (sumHi * shrink) : 1;
  for (let i = 0; i < n; i += 1) hi[i] = Math.max(lo[i], hi[i] * shrink * grow);
  const v = Array.from({ length: n }, () => (rng.nextFloat() - 0.3) * 3);
  return { v, lo, hi };
}

/** Reference solution: bisection on the shift, then clamp (slow but obviously right). */
function bisectionProjection(v: number[], lo: number[], hi: number[]): number[] {
  let a = Math.min(...v.map((x, i) => x - hi[i])) - 1;
  let b = Math.max(...v.map((x, i) => x - lo[i])) + 1;
  const f = (t: number) => v.reduce((s, x, i) => s + Math.min(hi[i], Math.max(lo[i], x - t)), 0);
  for (let k = 0; k < 200; k += 1) {
    const m = (a + b) / 2;
    if (f(m) > 1) a = m;
    else b = m;
  }
  return v.map((x, i) => Math.min(hi[i], Math.max(lo[i], x - (a + b) / 2)));
}

describe('projectOntoCappedSimplex', () => {
  it('sums to 1 and keeps every bound exactly over 2000 random cases', () => {
    const rng = createRng(11);
    for (let k = 0; k < 2000; k += 1) {
      const { v, lo, hi } = randomCase(rng);
      const w = projectOntoCappedSimplex(v, lo, hi);
      expect(Math.abs(w.reduce((s, x) => s + x, 0) - 1)).toBeLessThan(1e-12);
      w.forEach((x, i) => {
        expect(x >= lo[i] && x <= hi[i]).toBe(true);
      });
    }
  });

  it('agrees with a bisection reference and satisfies the KKT conditions', () => {
    const rng = createRng(12);
    for (let k = 0; k < 500; k += 1) {
      const { v, lo, hi } = randomCase(rng);
      const w = projectOntoCappedSimplex(v, lo, hi);
      const reference = bisectionProjection(v, lo, hi);
      w.forEach((x, i) => expect(Math.abs(x - reference[i])).toBeLessThan(1e-9));
      // One shift τ for every coordinate strictly inside its bounds.
      const shifts = w.map((x, i) => (x > lo[i] && x < hi[i] ? v[i] - x : null)).filter((t): t is number => t !== null);
      for (const t of shifts) expect(Math.abs(t - shifts[0])).toBeLessThan(1e-9);
    }
  });

  it('leaves a point that is already feasible unchanged', () => {
    const w = [0.2, 0.3, 0.5];
    expect(projectOntoCappedSimplex(w, [0.1, 0.1, 0.1], [0.6, 0.6, 0.6])).toEqual(w);
  });

  it('solves a small case by hand: the capped coordinate stops at its bound, the rest share the shift', () => {
    // v = (0.9, 0.3, 0.1), hi = 0.5: w1 = 0.5, then w2, w3 = v − τ with 0.3 − τ + 0.1 − τ = 0.5 → τ = −0.05.
    const w = projectOntoCappedSimplex([0.9, 0.3, 0.1], [0, 0, 0], [0.5, 0.5, 0.5]);
    expect(w[0]).toBe(0.5);
    expect(w[1]).toBeCloseTo(0.35, 15);
    expect(w[2]).toBeCloseTo(0.15, 15);
  });

  it('refuses an empty feasible set and non-finite input', () => {
    expect(() => projectOntoCappedSimplex([0.5, 0.5], [0.6, 0.6], [1, 1])).toThrow(/lower bounds sum/);
    expect(() => projectOntoCappedSimplex([0.5, 0.5], [0, 0], [0.4, 0.4])).toThrow(/upper bounds sum/);
    expect(() => projectOntoCappedSimplex([Number.NaN, 0.5], [0, 0], [1, 1])).toThrow(/non-finite/);
  });
});
