import { describe, expect, it } from 'vitest';
import { combineOrders, parseJudgeVerdict, winTieLoss, type JudgeVerdict, type PairOutcome } from './judge';

describe('combineOrders', () => {
  // ab: candidate shown first; ba: candidate shown second.
  const table: [JudgeVerdict, JudgeVerdict, PairOutcome, boolean][] = [
    ['first', 'second', 'win', true], // picked the candidate in both orders
    ['second', 'first', 'loss', true],
    ['tie', 'tie', 'tie', true],
    ['first', 'first', 'tie', false], // always picks position 1: position bias
    ['second', 'second', 'tie', false],
    ['first', 'tie', 'tie', false], // win + tie → tie (MT-Bench: inconsistent)
    ['tie', 'second', 'tie', false],
    ['second', 'tie', 'tie', false], // loss + tie → tie
    ['tie', 'first', 'tie', false],
  ];
  it.each(table)('ab %s, ba %s → %s', (ab, ba, outcome, consistent) => {
    expect(combineOrders(ab, ba)).toMatchObject({ outcome, consistent });
  });
  it('any null is a skip, with the order named', () => {
    expect(combineOrders(null, 'second')).toMatchObject({ outcome: 'skip' });
    expect(combineOrders('first', null).reason).toMatch(/candidate-second order \(ba\)/);
    expect(combineOrders(null, null).reason).toMatch(/both orders/);
    expect(() => combineOrders('A' as JudgeVerdict, 'tie')).toThrow(/^ab:/);
  });
});

describe('winTieLoss', () => {
  it('counts per subdomain and overall; skips are not judged', () => {
    const v = [
      ...Array.from({ length: 5 }, () => ({ subdomain: 'safety', outcome: 'win' as const })),
      ...Array.from({ length: 3 }, () => ({ subdomain: 'safety', outcome: 'tie' as const })),
      ...Array.from({ length: 2 }, () => ({ subdomain: 'safety', outcome: 'loss' as const })),
      { subdomain: 'safety', outcome: 'skip' as const },
      { subdomain: 'code', outcome: 'loss' as const },
      { subdomain: 'code', outcome: 'tie' as const },
      { subdomain: 'calc', outcome: 'skip' as const },
    ];
    const r = winTieLoss(v);
    // safety: (5 − 2) / 10 = 0.3.
    expect(r.bySubdomain.safety).toEqual({ win: 5, tie: 3, loss: 2, skip: 1, n: 10, netWinRate: 0.3 });
    expect(r.bySubdomain.code).toEqual({ win: 0, tie: 1, loss: 1, skip: 0, n: 2, netWinRate: -0.5 });
    // n = 0 → null, not 0.
    expect(r.bySubdomain.calc).toEqual({ win: 0, tie: 0, loss: 0, skip: 1, n: 0, netWinRate: null });
    // overall: W 5, T 4, L 3, skip 2 → (5 − 3) / 12.
    expect(r.overall).toEqual({ win: 5, tie: 4, loss: 3, skip: 2, n: 12, netWinRate: 2 / 12 });
    expect(winTieLoss([]).overall.netWinRate).toBeNull();
    expect(() => winTieLoss([{ subdomain: '', outcome: 'win' }])).toThrow(/verdicts\[0\]\.subdomain/);
  });
});

describe('parseJudgeVerdict', () => {
  it.each([
    ['Assistant A is more accurate. [[A]]', 'first'],
    ['[[B]]', 'second'],
    ['Both are equally good.\n\nFinal verdict: [[C]]', 'tie'],
    ['[[A]] ... to restate: [[A]]', 'first'],
    ['[[A]] or [[B]]', null],
    ['[[a]]', null],
    ['[[ A ]]', null],
    ['[A]', null],
    ['A', null],
    ['', null],
    ['[[D]]', null],
  ] as const)('%j → %s', (text, expected) => {
    expect(parseJudgeVerdict(text)).toBe(expected);
  });
});
