import { inflateSync } from 'node:zlib';
import { seriesColor } from '@xyp/charts';
import { describe, expect, it } from 'vitest';
import { alignmentByCategory, alignmentChart, alignmentTables, summarizeSeeds, summarizeValues, wilsonInterval, type AlignmentReport, type ScoredPair } from './alignment';

/** `aligned` pairs ranked right, `ties` tied, the rest ranked wrong, all in one category. */
function pairs(category: string, set: 'finance' | 'general', total: number, aligned: number, ties = 0): ScoredPair[] {
  return Array.from({ length: total }, (_, i) => ({ category, set, chosen: i < aligned ? 1 : i < aligned + ties ? 0.5 : 0, rejected: 0.5 }));
}

/** A run where finance.calculation has `k` of 10 aligned. */
const calculationRun = (k: number): AlignmentReport => alignmentByCategory(pairs('finance.calculation', 'finance', 10, k));

describe('wilsonInterval', () => {
  it('gives (0.3968, 0.8922) for 7 of 10', () => {
    // p = 0.7, z² = 3.841459: centre = (0.7 + 0.192073) / 1.384146 = 0.644493,
    // half = 1.959964 · √(0.021 + 0.009604) / 1.384146 = 0.247715.
    const [lo, hi] = wilsonInterval(7, 10);
    expect(lo).toBeCloseTo(0.3968, 4);
    expect(hi).toBeCloseTo(0.8922, 4);
  });

  it('has lower bound exactly 0 for 0 of 5 (upper 0.4345) and upper bound exactly 1 for 10 of 10', () => {
    const [lo, hi] = wilsonInterval(0, 5);
    expect(lo).toBe(0);
    // centre = half = (3.841459 / 10) / 1.768292 = 0.217241.
    expect(hi).toBeCloseTo(0.4345, 4);
    const [lo10, hi10] = wilsonInterval(10, 10);
    expect(hi10).toBe(1);
    expect(lo10).toBeCloseTo(0.7225, 4);
  });

  it('refuses an empty sample and k outside 0..n', () => {
    expect(() => wilsonInterval(0, 0)).toThrow(RangeError);
    expect(() => wilsonInterval(6, 5)).toThrow(RangeError);
  });
});

describe('alignmentByCategory', () => {
  it('counts a tie as not aligned', () => {
    const report = alignmentByCategory([
      { category: 'finance.calculation', set: 'finance', chosen: 2, rejected: 1 },
      { category: 'finance.calculation', set: 'finance', chosen: 0.5, rejected: 0.5 },
      { category: 'finance.calculation', set: 'finance', chosen: -1, rejected: 1 },
    ]);
    expect(report.categories).toHaveLength(1);
    expect(report.categories[0]).toMatchObject({ category: 'finance.calculation', pairs: 3, aligned: 1, ties: 1 });
    expect(report.categories[0].rate).toBeCloseTo(1 / 3, 12);
    expect(report.overall.ci95[0]).toBeCloseTo(0.0615, 4);
    expect(report.overall.ci95[1]).toBeCloseTo(0.7923, 4);
  });

  it('gives the pooled rate and the macro average of the subcategories, which differ on unbalanced sets', () => {
    // calculation 9 of 10, encyclopedia 1 of 2: pooled 10 / 12 = 0.8333, macro (0.9 + 0.5) / 2 = 0.7.
    const report = alignmentByCategory([...pairs('finance.calculation', 'finance', 10, 9), ...pairs('finance.encyclopedia', 'finance', 2, 1)]);
    const finance = report.bySet.finance!;
    expect(finance).toMatchObject({ pairs: 12, aligned: 10, ties: 0, categories: 2 });
    expect(finance.rate).toBeCloseTo(10 / 12, 12);
    expect(finance.macroRate).toBeCloseTo(0.7, 12);
    expect(finance.ci95[0]).toBeCloseTo(0.552, 3);
    expect(finance.ci95[1]).toBeCloseTo(0.953, 3);
    expect(report.bySet.general).toBeUndefined();
    expect(report.overall.rate).toBeCloseTo(10 / 12, 12);
  });

  it('orders categories as in SUBCATEGORIES, unknown ones after them alphabetically, and resolves names and labels', () => {
    const report = alignmentByCategory([
      ...pairs('zeta topic', 'general', 1, 1),
      ...pairs('金融领域计算', 'finance', 1, 1),
      ...pairs('general.safety', 'general', 1, 0),
      ...pairs('Alpha topic', 'general', 1, 1),
      ...pairs('finance calculation', 'finance', 1, 0),
      ...pairs('finance.investment-research', 'finance', 1, 1),
    ]);
    expect(report.categories.map((c) => c.category)).toEqual(['finance.investment-research', 'finance.calculation', 'general.safety', 'Alpha topic', 'zeta topic']);
    expect(report.categories[1]).toMatchObject({ name: '金融领域计算', label: 'finance calculation', pairs: 2, aligned: 1 });
    expect(report.categories[3].label).toBeUndefined();
    expect(report.bySet.general).toMatchObject({ pairs: 3, aligned: 2, categories: 3 });
  });

  it('refuses no pairs and a score that is not a finite number', () => {
    expect(() => alignmentByCategory([])).toThrow(/no scored pairs/);
    expect(() => alignmentByCategory([{ category: 'x', set: 'finance', chosen: NaN, rejected: 0 }])).toThrow(/pair 0 .*not a finite number/);
  });
});

describe('summarizeValues and summarizeSeeds', () => {
  it('uses the sample std (n − 1): std of [0.6, 0.7, 0.8] is 0.1; one value has std 0', () => {
    const s = summarizeValues([0.6, 0.7, 0.8]);
    expect(s.mean).toBeCloseTo(0.7, 12);
    expect(s.std).toBeCloseTo(0.1, 12);
    expect([s.min, s.max, s.n]).toEqual([0.6, 0.8, 3]);
    expect(summarizeValues([0.42])).toEqual({ mean: 0.42, std: 0, min: 0.42, max: 0.42, n: 1 });
  });

  it('summarizes each category and set over seeds, with the pairs count and the interval of the mean run', () => {
    const summary = summarizeSeeds([calculationRun(6), calculationRun(7), calculationRun(8)]);
    expect(summary.runs).toBe(3);
    const c = summary.categories[0];
    expect(c).toMatchObject({ category: 'finance.calculation', set: 'finance', label: 'finance calculation', n: 3, pairs: { min: 10, max: 10 } });
    expect(c.mean).toBeCloseTo(0.7, 12);
    expect(c.std).toBeCloseTo(0.1, 12);
    // Mean aligned 7 of mean pairs 10: Wilson (0.3968, 0.8922).
    expect(c.ci95[0]).toBeCloseTo(0.3968, 4);
    expect(c.ci95[1]).toBeCloseTo(0.8922, 4);
    const finance = summary.bySet.finance!;
    expect(finance.pooled.std).toBeCloseTo(0.1, 12);
    expect(finance.macro.mean).toBeCloseTo(0.7, 12);
    expect(finance.pairs).toEqual({ min: 10, max: 10 });
    expect(summarizeSeeds([calculationRun(7)]).categories[0].std).toBe(0);
  });

  it('counts for each category only the runs it appears in', () => {
    const withSafety = alignmentByCategory([...pairs('finance.calculation', 'finance', 10, 5), ...pairs('general.safety', 'general', 4, 3)]);
    const summary = summarizeSeeds([calculationRun(7), withSafety]);
    expect(summary.categories.map((c) => [c.category, c.n])).toEqual([
      ['finance.calculation', 2],
      ['general.safety', 1],
    ]);
    expect(summary.bySet.general!.pooled.n).toBe(1);
    expect(summary.overall.pairs).toEqual({ min: 10, max: 14 });
    expect(() => summarizeSeeds([])).toThrow(RangeError);
  });
});

describe('alignmentTables', () => {
  const ufrm = [6, 7, 8].map((k) => alignmentByCategory([...pairs('finance.calculation', 'finance', 10, k), ...pairs('finance.encyclopedia', 'finance', 2, 1), ...pairs('general.safety', 'general', 4, 3)]));
  const ablation = [alignmentByCategory([...pairs('finance.calculation', 'finance', 10, 5), ...pairs('general.safety', 'general', 4, 2)])];

  it('writes one row per subcategory with mean ± std in percent and the pair count, then the average', () => {
    const { json, markdown } = alignmentTables([
      { name: 'UFRM', seeds: ufrm },
      { name: 'no CL', seeds: ablation },
    ]);
    expect(json.tables.map((t) => t.set)).toEqual(['finance', 'general']);
    const finance = json.tables[0];
    expect(finance.rows.map((r) => r.category)).toEqual(['finance.encyclopedia', 'finance.calculation']);
    expect(finance.rows[0].cells[1]).toBeNull();
    expect(markdown).toContain('| Subcategory | UFRM (3 seeds) | no CL (1 seed) |');
    expect(markdown).toContain('| 金融领域计算 `finance.calculation` | 70.0 ± 10.0 (n=10) | 50.0 ± 0.0 (n=10) |');
    expect(markdown).toContain('| 金融百科问答 `finance.encyclopedia` | 50.0 ± 0.0 (n=2) | — |');
    // UFRM's macro per seed: (0.6 + 0.5) / 2, (0.7 + 0.5) / 2, (0.8 + 0.5) / 2 → 60.0 ± 5.0.
    expect(markdown).toContain('| **Average (平均)** | 60.0 ± 5.0 | 50.0 ± 0.0 |');
    // Pooled, no CL: 5 of 10 → Wilson (0.2366, 0.7634).
    expect(markdown).toContain('- no CL: 50.0 ± 0.0 [23.7, 76.3] (n=10)');
    expect(finance.pooled[0]!.mean).toBeCloseTo((7 / 12 + 8 / 12 + 9 / 12) / 3, 12);
    expect(markdown).toContain('| 安全 `general.safety` | 75.0 ± 0.0 (n=4) | 50.0 ± 0.0 (n=4) |');
  });

  it('refuses a variant with no runs', () => {
    expect(() => alignmentTables([{ name: 'empty', seeds: [] }])).toThrow(/"empty" has no runs/);
  });
});

describe('alignmentChart', () => {
  it('draws a PNG with one bar colour per variant', () => {
    const png = alignmentChart([
      { name: 'UFRM', seeds: [calculationRun(9), calculationRun(8)] },
      { name: 'no CL', seeds: [calculationRun(6)] },
    ]);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
    const width = view.getUint32(16);
    const idatLength = view.getUint32(33);
    expect(String.fromCharCode(...png.subarray(37, 41))).toBe('IDAT');
    const raw = inflateSync(png.subarray(41, 41 + idatLength));
    const counts = [seriesColor(0), seriesColor(1)].map((color) => {
      let n = 0;
      for (let at = 0; at + 3 <= raw.length; at += 1) {
        if (at % (width * 3 + 1) === 0) continue;
        const px = at - Math.floor(at / (width * 3 + 1)) - 1;
        if (px % 3 === 0 && raw[at] === color[0] && raw[at + 1] === color[1] && raw[at + 2] === color[2]) n += 1;
      }
      return n;
    });
    expect(counts[0]).toBeGreaterThan(1000);
    expect(counts[1]).toBeGreaterThan(1000);
    expect(() => alignmentChart([{ name: 'UFRM', seeds: [calculationRun(9)] }], { set: 'general' })).toThrow(/no pairs of the general set/);
  });
});
