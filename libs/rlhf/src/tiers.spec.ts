import { describe, expect, it } from 'vitest';
import { quantileType7 } from './stats';
import { tierValues } from './tiers';

describe('quantileType7 (numpy default, linear)', () => {
  it('matches hand values', () => {
    // np.quantile([1, 2, 3, 4], 0.25) = 1.75; 0.5 → 2.5; [10, 20, 40] at 0.9: h = 1.8 → 20 + 0.8·20 = 36.
    expect(quantileType7([4, 1, 3, 2], 0.25)).toBeCloseTo(1.75, 12);
    expect(quantileType7([1, 2, 3, 4], 0.5)).toBeCloseTo(2.5, 12);
    expect(quantileType7([10, 20, 40], 0.9)).toBeCloseTo(36, 12);
    expect(quantileType7([5], 0.3)).toBe(5);
    expect(quantileType7([1, 9], 0)).toBe(1);
    expect(quantileType7([1, 9], 1)).toBe(9);
  });
});

describe('tierValues, quantile mode', () => {
  it('puts values exactly on a quantile in the outer tier', () => {
    // 7 values 0..6: h_lo = 6/3 = 2 → q_lo = 2, h_hi = 4 → q_hi = 4.
    const values = { a: 0, b: 1, c: 2, d: 3, e: 4, f: 5, g: 6 };
    const r = tierValues(values, { mode: 'quantile' });
    expect(r.cuts.bad).toBeCloseTo(2, 12);
    expect(r.cuts.good).toBeCloseTo(4, 12);
    expect(r.tiers).toEqual({ a: 'bad', b: 'bad', c: 'bad', d: 'mid', e: 'good', f: 'good', g: 'good' });
  });
  it('interpolates between order statistics', () => {
    // [1, 2, 3]: q_lo = 1 + (2/3)·1 = 1.667, q_hi = 2.333.
    const r = tierValues({ x: 1, y: 2, z: 3 }, { mode: 'quantile', low: 1 / 3, high: 2 / 3 });
    expect(r.cuts.bad).toBeCloseTo(5 / 3, 12);
    expect(r.cuts.good).toBeCloseTo(7 / 3, 12);
    expect(r.tiers).toEqual({ x: 'bad', y: 'mid', z: 'good' });
  });
  it('a value equal to both quantiles (q_lo = q_hi) is mid; below bad, above good', () => {
    expect(tierValues({ only: 0.3 }, { mode: 'quantile' }).tiers).toEqual({ only: 'mid' });
    // [1, 1, 1, 5]: h_lo = 1, h_hi = 2 → q_lo = q_hi = 1.
    const r = tierValues({ a: 1, b: 1, c: 1, d: 5 }, { mode: 'quantile' });
    expect(r.tiers).toEqual({ a: 'mid', b: 'mid', c: 'mid', d: 'good' });
    // [0, 2, 2, 2]: q_lo = q_hi = 2.
    expect(tierValues({ a: 0, b: 2, c: 2, d: 2 }, { mode: 'quantile' }).tiers).toEqual({ a: 'bad', b: 'mid', c: 'mid', d: 'mid' });
  });
  it('ties share a tier', () => {
    const r = tierValues({ a: 0, b: 2, c: 2, d: 4, e: 6, f: 6, g: 6 }, { mode: 'quantile' });
    // sorted 0,2,2,4,6,6,6: q_lo = x[2] = 2, q_hi = x[4] = 6.
    expect(r.tiers).toEqual({ a: 'bad', b: 'bad', c: 'bad', d: 'mid', e: 'good', f: 'good', g: 'good' });
  });
});

describe('tierValues, fixed mode', () => {
  it('bad if v < bad, good if v >= good, else mid', () => {
    const r = tierValues({ a: -0.0001, b: 0, c: 0.1999, d: 0.2, e: 0.9 }, { mode: 'fixed', bad: 0, good: 0.2 });
    expect(r.tiers).toEqual({ a: 'bad', b: 'mid', c: 'mid', d: 'good', e: 'good' });
    expect(r.records[3].reason).toBe('values 0.2000 >= good 0.2000 → good');
  });
  it('with bad = good there is no mid', () => {
    expect(tierValues({ a: 0.49, b: 0.5 }, { mode: 'fixed', bad: 0.5, good: 0.5 }).tiers).toEqual({ a: 'bad', b: 'good' });
  });
});

describe('tierValues errors', () => {
  it('names the field', () => {
    expect(() => tierValues({ a: 1 }, { mode: 'fixed', bad: 1, good: 0 })).toThrow(/config\.bad: bad must be <= good/);
    expect(() => tierValues({ a: 1 }, { mode: 'quantile', low: 0.8, high: 0.2 })).toThrow(/config\.low/);
    expect(() => tierValues({ a: NaN }, { mode: 'quantile' }, 'ppo gain')).toThrow(/ppo gain\.a: must be a finite number, got NaN/);
    expect(() => tierValues({}, { mode: 'quantile' })).toThrow(/no subdomains/);
    expect(() => tierValues({ a: 1 }, { mode: 'median' } as never)).toThrow(/config/);
  });
});
