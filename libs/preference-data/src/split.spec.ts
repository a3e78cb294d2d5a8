import { describe, expect, it } from 'vitest';
import { splitOf } from './split';

describe('splitOf', () => {
  it('is deterministic for a seed and changes with the seed', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `user: question ${i}`);
    const a = keys.map((k) => splitOf(k, 7, 0.3));
    expect(keys.map((k) => splitOf(k, 7, 0.3))).toEqual(a);
    expect(keys.map((k) => splitOf(k, 8, 0.3))).not.toEqual(a);
  });

  it('puts about testFraction of the prompts in test', () => {
    const n = 5000;
    const test = Array.from({ length: n }, (_, i) => splitOf(`user: prompt ${i}`, 'salt', 0.1)).filter((s) => s === 'test').length;
    expect(Math.abs(test / n - 0.1)).toBeLessThan(0.015);
  });

  it('sends everything to train at 0 and to test at 1, and refuses fractions outside [0, 1]', () => {
    expect(splitOf('user: x', 0, 0)).toBe('train');
    expect(splitOf('user: x', 0, 1)).toBe('test');
    expect(() => splitOf('user: x', 0, 1.5)).toThrow(/testFraction must be in \[0, 1\], got 1.5/);
  });
});
