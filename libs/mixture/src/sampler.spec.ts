import { describe, expect, it } from 'vitest';
import { createRng } from '@xyp/random';
import { allocateTokens, planSampling } from './sampler';
import type { IndexedDocument } from './schemas';

function corpus(counts: Record<string, number>, seed = 9): IndexedDocument[] {
  const rng = createRng(seed);
  const docs: IndexedDocument[] = [];
  let docIndex = 0;
  for (const [category, count] of Object.entries(counts)) {
    for (let i = 0; i < count; i += 1) {
      docs.push({ category, bucket: [2048, 4096, 8192][rng.nextInt(3)], docIndex, tokens: 50 + rng.nextInt(500) });
      docIndex += 1;
    }
  }
  return docs;
}

describe('allocateTokens', () => {
  it('splits the budget by largest remainder, ties to the category name', () => {
    expect(allocateTokens({ b: 1, a: 1, c: 1 }, 10)).toEqual({ b: 3, a: 4, c: 3 });
    // quotas 3.5, 1.75, 1.75: floors 3, 1, 1 and the two tokens left go to the 0.75 remainders.
    expect(allocateTokens({ a: 0.5, b: 0.25, c: 0.25 }, 7)).toEqual({ a: 3, b: 2, c: 2 });
    expect(allocateTokens({ a: 1, b: 0 }, 5)).toEqual({ a: 5, b: 0 });
  });

  it('sums to the total exactly over many random weights and budgets', () => {
    const rng = createRng(21);
    for (let k = 0; k < 2000; k += 1) {
      const n = 1 + rng.nextInt(15);
      const weights = Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, rng.nextFloat() < 0.1 ? 0 : rng.nextFloat()]));
      if (Object.values(weights).every((w) => w === 0)) weights.c0 = 1;
      const total = rng.nextFloat() < 0.2 ? rng.nextInt(1000) : Math.floor(rng.nextFloat() * 2 ** 40);
      const budgets = allocateTokens(weights, total);
      expect(Object.values(budgets).reduce((a, b) => a + b, 0)).toBe(total);
      const sum = Object.values(weights).reduce((a, b) => a + b, 0);
      for (const [c, b] of Object.entries(budgets)) {
        expect(Number.isInteger(b)).toBe(true);
        expect(Math.abs(b - (weights[c] / sum) * total)).toBeLessThan(1 + total * 1e-15);
      }
    }
  });

  it('refuses a fractional or negative budget', () => {
    expect(() => allocateTokens({ a: 1 }, 1.5)).toThrow(/non-negative safe integer/);
    expect(() => allocateTokens({ a: 1 }, -1)).toThrow(/non-negative safe integer/);
  });
});

describe('planSampling', () => {
  const index = corpus({ news: 40, wiki: 40, social: 5 });
  const weights = { news: 0.5, wiki: 0.3, social: 0.2 };

  it('gives the same plan for the same seed and a different order for another seed', () => {
    const a = planSampling(index, weights, { totalTokens: 20_000, seed: 7 });
    const b = planSampling(index, weights, { totalTokens: 20_000, seed: 7 });
    const c = planSampling(index, weights, { totalTokens: 20_000, seed: 8 });
    expect(b).toEqual(a);
    expect(c.order).not.toEqual(a.order);
  });

  it('does not depend on the order of the index', () => {
    const shuffled = [...index].reverse();
    expect(planSampling(shuffled, weights, { totalTokens: 20_000, seed: 7 })).toEqual(planSampling(index, weights, { totalTokens: 20_000, seed: 7 }));
  });

  it('meets every category budget, overshooting by less than one document', () => {
    const maxDoc = Math.max(...index.map((d) => d.tokens));
    const rng = createRng(31);
    for (let k = 0; k < 50; k += 1) {
      const total = rng.nextInt(60_000);
      const plan = planSampling(index, weights, { totalTokens: total, seed: k });
      const budgets = allocateTokens(weights, total);
      for (const [category, stats] of Object.entries(plan.categories)) {
        expect(stats.budget).toBe(budgets[category]);
        expect(stats.achieved).toBeGreaterThanOrEqual(stats.budget);
        expect(stats.overshoot).toBeLessThan(maxDoc);
        const drawn = plan.order.filter((e) => e.category === category).reduce((a, e) => a + e.tokens, 0);
        expect(drawn).toBe(stats.achieved);
      }
    }
  });

  it('hits every budget exactly with truncateLast, so the plan totals the token budget', () => {
    const plan = planSampling(index, weights, { totalTokens: 12_345, seed: 3, truncateLast: true });
    expect(plan.achievedTokens).toBe(12_345);
    for (const stats of Object.values(plan.categories)) expect(stats.achieved).toBe(stats.budget);
    expect(plan.order.filter((e) => e.truncated).length).toBeLessThanOrEqual(3);
  });

  it('draws without replacement until a category runs out, then flags upsampling', () => {
    const plan = planSampling(index, weights, { totalTokens: 20_000, seed: 1 });
    const social = plan.categories.social;
    expect(social.budget).toBeGreaterThan(social.availableTokens);
    expect(social.upsampled).toBe(true);
    expect(social.passes).toBeGreaterThan(1);
    expect(plan.upsampled).toEqual(['social']);
    // First pass: every social document exactly once before any repeat.
    const firstPass = plan.order.filter((e) => e.category === 'social' && e.epoch === 0).map((e) => e.docIndex);
    expect(new Set(firstPass).size).toBe(5);
    expect(firstPass.length).toBe(5);
    const news = plan.order.filter((e) => e.category === 'news').map((e) => `${e.bucket}:${e.docIndex}`);
    expect(new Set(news).size).toBe(news.length);
    expect(plan.categories.news.upsampled).toBe(false);
  });

  it('interleaves categories rather than emitting them in blocks', () => {
    const plan = planSampling(index, { news: 0.5, wiki: 0.5 }, { totalTokens: 10_000, seed: 2 });
    const firstHalf = plan.order.slice(0, Math.floor(plan.order.length / 2));
    expect(new Set(firstHalf.map((e) => e.category)).size).toBe(2);
  });

  it('keeps one category’s draws when another category’s weight changes', () => {
    const a = planSampling(index, { news: 0.5, wiki: 0.5 }, { totalTokens: 10_000, seed: 4 });
    const b = planSampling(index, { news: 0.5, wiki: 0.2, social: 0.3 }, { totalTokens: 10_000, seed: 4 });
    const newsDraws = (p: typeof a) =>
      p.order
        .filter((e) => e.category === 'news')
        .map((e) => e.docIndex)
        .sort((x, y) => x - y);
    expect(newsDraws(b)).toEqual(newsDraws(a));
  });

  it('refuses a category with a budget and no documents, and duplicate documents', () => {
    expect(() => planSampling(index, { news: 0.5, law: 0.5 }, { totalTokens: 1000, seed: 1 })).toThrow(
      /category "law" has a budget of 500 tokens but no documents in the index/,
    );
    const duplicate = [...index, { ...index[3] }];
    expect(() => planSampling(duplicate, weights, { totalTokens: 1000, seed: 1 })).toThrow(/index:entry 86: duplicate document/);
  });

  it('plans nothing for a zero budget', () => {
    const plan = planSampling(index, weights, { totalTokens: 0, seed: 1 });
    expect(plan.order).toEqual([]);
    expect(plan.achievedTokens).toBe(0);
  });
});
