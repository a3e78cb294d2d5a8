import { createRng, shuffleInPlace } from '@xyp/random';
import { describe, expect, it } from 'vitest';
import { ciFilter, type CiFilterResult, type CiPrompt } from './ci-filter';
import { CiFilterEmptyError, RlhfInputError } from './errors';
import { sampleStd } from './stats';

/** Two scores m ± d: mean m, sample std d·√2 (population std would be d). */
const pair = (id: string, subdomain: string, m: number, d = 1): CiPrompt => ({ id, subdomain, scores: [m - d, m + d] });

function accountedOnce(input: readonly CiPrompt[], r: CiFilterResult): void {
  const ids = [...r.kept.map((k) => k.id), ...r.dropped.map((d) => d.id)];
  expect(ids.length).toBe(input.length);
  const counts = Object.values(r.bySubdomain).reduce((a, c) => a + c.invalid + c.lowStd + c.meanAbove + c.meanBelow + c.notSampled + c.kept, 0);
  expect(counts).toBe(input.length);
  for (const c of Object.values(r.bySubdomain)) expect(c.input).toBe(c.invalid + c.lowStd + c.meanAbove + c.meanBelow + c.notSampled + c.kept);
  expect(Object.values(r.bySubdomain).reduce((a, c) => a + c.input, 0)).toBe(input.length);
}

describe('sampleStd', () => {
  it('divides by n − 1', () => {
    expect(sampleStd([1, 3])).toBeCloseTo(Math.SQRT2, 12);
    expect(sampleStd([2, 4, 6])).toBeCloseTo(2, 12);
    expect(sampleStd([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(Math.sqrt(32 / 7), 12);
  });
});

describe('ciFilter rules', () => {
  const prompts: CiPrompt[] = [
    { id: 'p1', subdomain: 'fin.a', scores: [0, 0, 0] }, // std 0 → low-std
    { id: 'p2', subdomain: 'fin.a', scores: [1, 3] }, // mean 2, std √2 = 1.414 ≥ 1.2 (population std 1 would drop it)
    { id: 'p3', subdomain: 'fin.a', scores: [2, 4, 6] }, // mean 4, std 2
    { id: 'p4', subdomain: 'fin.b', scores: [8, 10, 12] }, // mean 10 > 9 → mean-above
    { id: 'p5', subdomain: 'fin.b', scores: [-6, -4, -2] }, // mean -4 < -3 → mean-below
    { id: 'p6', subdomain: 'fin.b', scores: [0, 3] }, // mean 1.5, std 2.1213
    { id: 'p7', subdomain: '', scores: [1, 2] }, // invalid: no subdomain
    { id: 'p8', subdomain: 'fin.a', scores: [1] }, // invalid: 1 score
    { id: 'p9', subdomain: 'fin.b', scores: [1, NaN] }, // invalid: NaN
    { id: 'p3', subdomain: 'fin.a', scores: [0, 5] }, // invalid: duplicate id
    { id: 'p10', scores: [1, 2] }, // invalid: subdomain missing
    { id: 'p11', subdomain: 'fin.b', scores: [] }, // invalid: no scores
  ];
  const r = ciFilter(prompts, { minStd: 1.2, upper: { absolute: 9 }, lower: { absolute: -3 }, seed: 7 });

  it('drops exactly the expected prompts, each under its rule', () => {
    const rule = (name: string) => r.dropped.filter((d) => d.rule === name).map((d) => d.id);
    expect(rule('low-std')).toEqual(['p1']);
    expect(rule('mean-above')).toEqual(['p4']);
    expect(rule('mean-below')).toEqual(['p5']);
    expect(rule('invalid')).toEqual(['p7', 'p8', 'p9', 'p3', 'p10', 'p11']);
    expect(rule('not-sampled')).toEqual([]);
    accountedOnce(prompts, r);
  });

  it('keeps the rest ordered by std descending, with mean and sample std', () => {
    expect(r.kept.map((k) => k.id)).toEqual(['p6', 'p3', 'p2']);
    expect(r.kept[0].std).toBeCloseTo(3 / Math.SQRT2, 12);
    expect(r.kept[2]).toMatchObject({ mean: 2, n: 2 });
    expect(r.kept[2].std).toBeCloseTo(Math.SQRT2, 12);
  });

  it('records invalid prompts with a reason and null stats, and counts per subdomain', () => {
    const p9 = r.dropped.find((d) => d.id === 'p9')!;
    expect(p9).toMatchObject({ subdomain: 'fin.b', mean: null, std: null });
    expect(p9.reason).toMatch(/score 1 is not a finite number \(got NaN\)/);
    expect(r.dropped.find((d) => d.id === 'p7')!).toMatchObject({ subdomain: null });
    expect(r.dropped.find((d) => d.id === 'p8')!.reason).toMatch(/1 score\(s\)/);
    expect(r.dropped.filter((d) => d.id === 'p3' && d.rule === 'invalid')[0].reason).toMatch(/duplicate id/);
    expect(r.bySubdomain['fin.a']).toEqual({ input: 5, invalid: 2, lowStd: 1, meanAbove: 0, meanBelow: 0, notSampled: 0, kept: 2 });
    expect(r.bySubdomain['fin.b']).toEqual({ input: 5, invalid: 2, lowStd: 0, meanAbove: 1, meanBelow: 1, notSampled: 0, kept: 1 });
    expect(r.bySubdomain['(missing)']).toEqual({ input: 2, invalid: 2, lowStd: 0, meanAbove: 0, meanBelow: 0, notSampled: 0, kept: 0 });
  });

  it('keeps a mean exactly on a threshold and a std exactly at minStd', () => {
    const s = ciFilter([pair('a', 'x', 9), pair('b', 'x', -3), { id: 'c', subdomain: 'x', scores: [0, 2] }], { minStd: Math.SQRT2, upper: { absolute: 9 }, lower: { absolute: -3 }, seed: 1 });
    expect(s.kept.map((k) => k.id).sort()).toEqual(['a', 'b', 'c']);
  });
});

describe('ciFilter quantile thresholds', () => {
  it('takes type-7 quantiles over the rule-1 survivors only', () => {
    // Rule-1 survivors' means 1..5; the low-std prompt with mean 100 must not move the quantiles.
    const prompts = [1, 2, 3, 4, 5].map((m) => pair(`m${m}`, 's', m));
    prompts.push({ id: 'flat', subdomain: 's', scores: [100, 100] });
    const r = ciFilter(prompts, { minStd: 0.5, upper: { quantile: 0.5 }, lower: { quantile: 0.1 }, seed: 3 });
    // upper: h = 4·0.5 = 2 → 3; lower: h = 0.4 → 1 + 0.4·1 = 1.4. (With 100 included: 3.5 and 1.5.)
    expect(r.thresholds.upper!.value).toBeCloseTo(3, 12);
    expect(r.thresholds.lower!.value).toBeCloseTo(1.4, 12);
    expect(r.dropped.filter((d) => d.rule === 'mean-above').map((d) => d.id)).toEqual(['m4', 'm5']);
    expect(r.dropped.filter((d) => d.rule === 'mean-below').map((d) => d.id)).toEqual(['m1']);
    expect(r.dropped.find((d) => d.id === 'm4')!.reason).toMatch(/the 0\.5 quantile/);
    expect(r.kept.map((k) => k.id).sort()).toEqual(['m2', 'm3']);
  });
});

describe('ciFilter std-weighted, proportion-keeping draw', () => {
  it('largest-remainder quotas by subdomain share: hand case', () => {
    // N = 10 survivors: a 5, b 3, c 2; K = 4 → exact 2, 1.2, 0.8 → floors 2, 1, 0, one seat left to c (0.8).
    const prompts = [
      ...[1, 2, 3, 4, 5].map((i) => pair(`a${i}`, 'a', 0, i)),
      ...[1, 2, 3].map((i) => pair(`b${i}`, 'b', 0, i)),
      ...[1, 2].map((i) => pair(`c${i}`, 'c', 0, i)),
    ];
    const r = ciFilter(prompts, { minStd: 0, keep: { count: 4 }, seed: 11 });
    expect(r.thresholds.quotas).toEqual({ a: 2, b: 1, c: 1 });
    expect(r.thresholds.keep).toMatchObject({ survivors: 10, count: 4 });
    expect(r.bySubdomain.a).toMatchObject({ kept: 2, notSampled: 3 });
    expect(r.kept.length).toBe(4);
    for (let i = 1; i < r.kept.length; i += 1) expect(r.kept[i - 1].std).toBeGreaterThanOrEqual(r.kept[i].std);
    expect(r.dropped.find((d) => d.rule === 'not-sampled')!.reason).toMatch(/keeps \d of its \d survivors/);
    // fraction: round-half-up(0.25 · 10) = 3 → exact 1.5, 0.9, 0.6 → 1, 0, 0 + two seats to b (0.9), c (0.6).
    expect(ciFilter(prompts, { minStd: 0, keep: { fraction: 0.25 }, seed: 11 }).thresholds.quotas).toEqual({ a: 1, b: 1, c: 1 });
    // count above N keeps all.
    expect(ciFilter(prompts, { minStd: 0, keep: { count: 99 }, seed: 11 }).kept.length).toBe(10);
  });

  it('property: each subdomain within one of its exact share, K kept, every prompt once (300 seeded cases)', () => {
    for (let t = 0; t < 300; t += 1) {
      const rng = createRng(1000 + t);
      const subs = 1 + rng.nextInt(5);
      const prompts: CiPrompt[] = [];
      for (let s = 0; s < subs; s += 1) {
        const n = 1 + rng.nextInt(15);
        for (let i = 0; i < n; i += 1) prompts.push({ id: `s${s}-${i}`, subdomain: `s${s}`, scores: Array.from({ length: 2 + rng.nextInt(4) }, () => rng.nextFloat() * 4 - 2) });
      }
      const keep = rng.nextInt(2) === 0 ? { count: 1 + rng.nextInt(prompts.length) } : { fraction: 0.05 + rng.nextFloat() * 0.95 };
      let r: CiFilterResult;
      try {
        r = ciFilter(prompts, { minStd: 0.2, keep, seed: t });
      } catch (e) {
        expect(e).toBeInstanceOf(CiFilterEmptyError); // a tiny fraction of few survivors can round to 0
        continue;
      }
      accountedOnce(prompts, r);
      const N = r.thresholds.keep.survivors;
      const K = r.thresholds.keep.count;
      expect(r.kept.length).toBe(K);
      for (const [sub, c] of Object.entries(r.bySubdomain)) {
        const survivors = c.kept + c.notSampled;
        expect(Math.abs(c.kept - (K * survivors) / N)).toBeLessThan(1);
        expect(r.thresholds.quotas[sub] ?? 0).toBe(c.kept);
      }
    }
  });

  it('draws with probability ∝ std (2000 seeds, one of std 1 and std 3)', () => {
    // P(pick the std-3 prompt) = 3 / (1 + 3) = 0.75.
    const prompts = [pair('lo', 'x', 0, 1 / Math.SQRT2), pair('hi', 'x', 0, 3 / Math.SQRT2)];
    let hi = 0;
    for (let seed = 0; seed < 2000; seed += 1) if (ciFilter(prompts, { minStd: 0, keep: { count: 1 }, seed }).kept[0].id === 'hi') hi += 1;
    expect(hi / 2000).toBeGreaterThan(0.72);
    expect(hi / 2000).toBeLessThan(0.78);
  });

  it('is deterministic for a seed and independent of the input order', () => {
    const prompts = Array.from({ length: 40 }, (_, i) => pair(`p${i}`, i % 3 === 0 ? 'a' : 'b', 0, 0.5 + (i % 7)));
    const cfg = { minStd: 0, keep: { fraction: 0.5 }, seed: 42 };
    const a = ciFilter(prompts, cfg);
    const b = ciFilter(shuffleInPlace([...prompts], createRng(5)), cfg);
    expect(b.kept).toEqual(a.kept);
    expect(ciFilter(prompts, cfg)).toEqual(a);
    const other = ciFilter(prompts, { ...cfg, seed: 43 });
    expect(other.kept.map((k) => k.id)).not.toEqual(a.kept.map((k) => k.id));
  });
});

describe('ciFilter errors', () => {
  it('an empty result names the rule that emptied it', () => {
    const emptyBy = (prompts: CiPrompt[], cfg: Parameters<typeof ciFilter>[1]) => {
      try {
        ciFilter(prompts, cfg);
      } catch (e) {
        expect(e).toBeInstanceOf(CiFilterEmptyError);
        return (e as CiFilterEmptyError).rule;
      }
      return 'none';
    };
    expect(emptyBy([{ id: 'a', subdomain: 'x', scores: [1] }], { minStd: 0, seed: 1 })).toBe('invalid');
    expect(emptyBy([pair('a', 'x', 0, 0.1)], { minStd: 1, seed: 1 })).toBe('low-std');
    expect(emptyBy([pair('a', 'x', 10)], { minStd: 0, upper: { absolute: 5 }, seed: 1 })).toBe('mean-above');
    expect(emptyBy([pair('a', 'x', -10)], { minStd: 0, lower: { absolute: 5 }, upper: { absolute: 6 }, seed: 1 })).toBe('mean-below');
    expect(emptyBy([pair('a', 'x', -10), pair('b', 'x', 10)], { minStd: 0, lower: { absolute: 0 }, upper: { absolute: 1 }, seed: 1 })).toBe('mean-range');
    expect(emptyBy([pair('a', 'x', 0), pair('b', 'x', 0)], { minStd: 0, keep: { fraction: 0.2 }, seed: 1 })).toBe('not-sampled');
  });

  it('config errors name the field', () => {
    const p = [pair('a', 'x', 0)];
    const field = (cfg: unknown) => {
      try {
        ciFilter(p, cfg as never);
      } catch (e) {
        expect(e).toBeInstanceOf(RlhfInputError);
        return (e as RlhfInputError).field;
      }
      return 'none';
    };
    expect(field({ minStd: -1, seed: 1 })).toBe('config.minStd');
    expect(field({ minStd: 0 })).toBe('config.seed');
    expect(field({ minStd: 0, seed: 1, upper: { quantile: 2 } })).toMatch(/^config\.upper/);
    expect(field({ minStd: 0, seed: 1, keep: { count: 0 } })).toMatch(/^config\.keep/);
    expect(field({ minStd: 0, seed: 1, minstd: 3 })).toBe('config');
    expect(field({ minStd: 0, seed: 1, lower: { absolute: 2 }, upper: { absolute: 1 } })).toBe('config.lower');
    expect(() => ciFilter([{ subdomain: 'x', scores: [1, 2] } as never], { minStd: 0, seed: 1 })).toThrow(/prompts\[0\]\.id/);
  });
});
