import { describe, expect, it } from 'vitest';
import { ropeTables } from './native';
import { angleTable } from './rotary-angles';

describe('angleTable: cos(p·θ_i), sin(p·θ_i) with θ_i = base^(−2i/Dh)', () => {
  it('holds the angles of the definition, computed here by hand, and keeps them when it grows', () => {
    // Dh 4, base 10000: θ_0 = 1, θ_1 = 10000^(−1/2) = 0.01.
    const small = angleTable(4, 10000, 3);
    const want = (p: number, i: number) => [Math.cos(p * [1, 0.01][i]), Math.sin(p * [1, 0.01][i])];
    for (let p = 0; p < 3; p++) {
      for (let i = 0; i < 2; i++) {
        expect(small.cos[p * 2 + i]).toBeCloseTo(want(p, i)[0], 6);
        expect(small.sin[p * 2 + i]).toBeCloseTo(want(p, i)[1], 6);
      }
    }
    expect(small.cos[2 * 2 + 1]).toBeCloseTo(0.9998000067, 6);
    expect(small.sin[2 * 2 + 0]).toBeCloseTo(0.9092974268, 6);
    // Asked for more positions, it grows; the rows it had are the same numbers.
    const grown = angleTable(4, 10000, 40);
    expect(grown.cos.length).toBeGreaterThanOrEqual(40 * 2);
    expect(Array.from(grown.cos.subarray(0, 6))).toEqual(Array.from(small.cos.subarray(0, 6)));
    expect(grown.sin[39 * 2 + 1]).toBeCloseTo(Math.sin(0.39), 6);
  });

  it("the addon's rope tables are its rows for positions 0..P−1: cos, then sin", () => {
    const config = { width: 8, heads: 2, contextLength: 5, positions: 'rotary', ropeBase: 100 } as Parameters<typeof ropeTables>[0];
    const rope = ropeTables(config);
    // Dh 4, base 100: θ_0 = 1, θ_1 = 100^(−1/2) = 0.1; P = 5 positions × 2 frequencies each.
    expect(rope).toHaveLength(2 * 5 * 2);
    expect(rope[4 * 2 + 1]).toBeCloseTo(Math.cos(0.4), 6);
    expect(rope[5 * 2 + 3 * 2 + 0]).toBeCloseTo(Math.sin(3), 6);
    expect(ropeTables({ ...config, positions: 'learned' })).toHaveLength(0);
  });
});
