import { describe, expect, it } from 'vitest';
import { formatTick, niceNumber, niceTicks } from './ticks';

describe('niceTicks', () => {
  it('covers the data with steps of 1, 2 or 5 × 10^k', () => {
    expect(niceTicks(0, 1)).toMatchObject({ min: 0, max: 1, step: 0.2, values: [0, 0.2, 0.4, 0.6, 0.8, 1], decimals: 1 });
    expect(niceTicks(0.13, 9.7)).toMatchObject({ min: 0, max: 10, step: 2, values: [0, 2, 4, 6, 8, 10], decimals: 0 });
    expect(niceTicks(-3, 47)).toMatchObject({ min: -10, max: 50, step: 10 });
    expect(niceTicks(0.3, 3.3, 6).values).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
  });

  it('keeps a fixed range and puts the multiples of the step inside it', () => {
    expect(niceTicks(0.45, 1, 6, true)).toMatchObject({ min: 0.45, max: 1, step: 0.1, values: [0.5, 0.6, 0.7, 0.8, 0.9, 1] });
  });

  it('widens a degenerate range and survives non-finite bounds', () => {
    expect(niceTicks(3, 3)).toMatchObject({ min: 2.7, max: 3.3, step: 0.1 });
    expect(niceTicks(0, 0)).toMatchObject({ min: -1, max: 1 });
    expect(niceTicks(NaN, NaN)).toMatchObject({ min: 0, max: 1 });
  });

  it('picks nice numbers', () => {
    expect([niceNumber(0.13, true), niceNumber(2.9, true), niceNumber(6.9, true), niceNumber(7, true)]).toEqual([0.1, 2, 5, 10]);
    expect([niceNumber(1.01, false), niceNumber(4.2, false), niceNumber(51, false)]).toEqual([2, 5, 100]);
  });
});

describe('formatTick', () => {
  it('writes just the decimals the step needs, no "-0", exponent form for huge values', () => {
    expect(formatTick(0.30000000000000004, 1)).toBe('0.3');
    expect(formatTick(-0.00001, 1)).toBe('0.0');
    expect(formatTick(0, 3)).toBe('0');
    expect(formatTick(2500000, 0)).toBe('2.50e6');
  });
});
