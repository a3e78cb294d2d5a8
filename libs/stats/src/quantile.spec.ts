import { describe, expect, it } from 'vitest';
import { median, quantileType7 } from './quantile';

describe('quantileType7', () => {
  it('interpolates between order statistics as numpy does (hand values)', () => {
    expect(quantileType7([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantileType7([1, 2, 3, 4], 0.25)).toBe(1.75); // h = 3·0.25 = 0.75 → 1 + 0.75·(2 − 1)
    expect(quantileType7([1, 2, 3, 4], 0.9)).toBeCloseTo(3.7, 12); // h = 2.7 → 3 + 0.7·1
    expect(quantileType7([1, 2, 3, 4], 0)).toBe(1);
    expect(quantileType7([1, 2, 3, 4], 1)).toBe(4);
    expect(median([5, 1, 3])).toBe(3);
  });

  it('refuses an empty list and q outside [0, 1]', () => {
    expect(() => quantileType7([], 0.5)).toThrow(/no values/);
    expect(() => quantileType7([1], 1.5)).toThrow(/q must be in \[0, 1\], got 1.5/);
  });
});
