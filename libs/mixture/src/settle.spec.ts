import { describe, expect, it } from 'vitest';
import { mixtureSettled } from './settle';

describe('mixtureSettled', () => {
  const moves = [
    { category: 'news', oldWeight: 0.5, newWeight: 0.44 },
    { category: 'finance', oldWeight: 0.5, newWeight: 0.54 },
  ];

  it('continues while a weight moves by the threshold or more, naming the category that moved most', () => {
    const verdict = mixtureSettled(moves, 0.01);
    expect(verdict).toMatchObject({ continue: true, category: 'news' });
    expect(verdict.maxChange).toBeCloseTo(0.06, 12);
    expect(verdict.reason).toBe('largest weight change 0.0600 (news) >= 0.01: the mixture still moves');
  });

  it('stops once every move is below the threshold', () => {
    const verdict = mixtureSettled(moves, 0.07);
    expect(verdict.continue).toBe(false);
    expect(verdict.reason).toBe('largest weight change 0.0600 (news) < 0.07: the mixture has settled');
  });

  it('counts a new category by its whole weight, and always continues without a threshold', () => {
    expect(mixtureSettled([{ category: 'law', oldWeight: null, newWeight: 0.2 }], 0.1).continue).toBe(true);
    expect(mixtureSettled(moves)).toMatchObject({ continue: true, reason: 'largest weight change 0.0600 (news); no stop rule (stop_below not set)' });
  });
});
