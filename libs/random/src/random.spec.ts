import { describe, expect, it } from 'vitest';
import { createRng, deriveSeed, mix32, nextNormal, nextSeed, seedToUint32, shuffleInPlace } from './random';

describe('seeded PRNG', () => {
  it('gives the same stream for the same seed and a different one for another seed', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 100 }, () => a.nextUint32());
    expect(Array.from({ length: 100 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.nextUint32())).not.toEqual(xs);
  });

  it('keeps floats in [0, 1) and integers in [0, n)', () => {
    const rng = createRng(7);
    for (let i = 0; i < 10_000; i += 1) {
      const x = rng.nextFloat();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      const k = rng.nextInt(13);
      expect(Number.isInteger(k) && k >= 0 && k < 13).toBe(true);
    }
  });

  it('draws integers close to uniformly (chi-square far below a loose bound)', () => {
    const rng = createRng(2024);
    const bins = new Array<number>(10).fill(0);
    const draws = 100_000;
    for (let i = 0; i < draws; i += 1) bins[rng.nextInt(10)] += 1;
    const expected = draws / 10;
    const chi2 = bins.reduce((sum, o) => sum + (o - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(40); // 9 degrees of freedom: p ≈ 1e-5 at 40
  });

  it('folds seeds that differ only above 32 bits into different streams', () => {
    expect(seedToUint32(1)).not.toBe(seedToUint32(1 + 2 ** 32));
    expect(seedToUint32(-1)).not.toBe(seedToUint32(2 ** 32 - 1));
    expect(() => createRng(1.5)).toThrow(/safe integer/);
  });

  it('derives different sub-stream seeds per label and per numeric path', () => {
    expect(deriveSeed(1, 'category:news')).not.toBe(deriveSeed(1, 'category:social'));
    expect(deriveSeed(1, 'category:news')).toBe(deriveSeed(1, 'category:news'));
    expect(deriveSeed(1, 3, 0)).not.toBe(deriveSeed(1, 0, 3));
    expect(deriveSeed(1, 3, 0)).not.toBe(deriveSeed(1, 3, 0 + 2 ** 32));
  });

  it('shuffles into a permutation, deterministically', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const once = shuffleInPlace([...items], createRng(5));
    expect([...once].sort((a, b) => a - b)).toEqual(items);
    expect(shuffleInPlace([...items], createRng(5))).toEqual(once);
    expect(once).not.toEqual(items);
  });

  it('is SplitMix32: each draw is mix32 of the state advanced by the golden-ratio increment', () => {
    const rng = createRng(9);
    let state = seedToUint32(9);
    for (let i = 0; i < 5; i += 1) {
      state = (state + 0x9e3779b9) >>> 0;
      expect(rng.nextUint32()).toBe(mix32(state));
    }
  });

  it('continues the same stream from a saved state', () => {
    const rng = createRng(11);
    rng.nextUint32();
    const saved = rng.state;
    const ahead = Array.from({ length: 20 }, () => rng.nextFloat());
    const resumed = createRng(0);
    resumed.state = saved;
    expect(Array.from({ length: 20 }, () => resumed.nextFloat())).toEqual(ahead);
  });

  it('draws standard normals (mean ≈ 0, variance ≈ 1) and int32 seeds', () => {
    const rng = createRng(13);
    const xs = Array.from({ length: 20_000 }, () => nextNormal(rng));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    for (let i = 0; i < 1000; i += 1) {
      const seed = nextSeed(rng);
      expect(Number.isInteger(seed) && seed >= 0 && seed < 2147483647).toBe(true);
    }
  });
});
