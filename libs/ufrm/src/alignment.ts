/**
 * The reward model's alignment rate (XuanYuan3 report, 三 RM评估): the share of held-out
 * preference pairs it ranks as the label does, per subcategory of the seed's two tables (finance
 * and general, `SUBCATEGORIES` of `@xyp/contracts`), with uncertainty, summaries over training
 * seeds, the two tables and a chart.
 *
 *   aligned_i = [r(x_i, y_i^c) > r(x_i, y_i^r)]        a tie is not aligned
 *   rate      = k / n                                 k = Σ aligned_i over the n pairs
 *
 * The 95% interval of a rate is Wilson's score interval (Wilson 1927; Brown, Cai & DasGupta 2001,
 * "Interval estimation for a binomial proportion"), with p̂ = k / n and z = 1.959964:
 *
 *   centre = (p̂ + z²/(2n)) / (1 + z²/n)
 *   half   = z / (1 + z²/n) · √(p̂(1 − p̂)/n + z²/(4n²))
 *   ci95   = [centre − half, centre + half]            (exactly 0 when k = 0, 1 when k = n)
 *
 * A set (finance, general) gets two averages: the pooled rate (all its pairs together, with its
 * Wilson interval) and the macro rate, the unweighted mean of its subcategory rates — the "平均"
 * row of the seed's tables, which weighs a subcategory of 20 pairs as much as one of 2,000.
 *
 * This is TRL's / OpenRLHF's reward `accuracy` broken down by category; `pairwiseAccuracy` in
 * `reward-model.ts` is the same count over one batch of pairs.
 */
import { barChart } from '@xyp/charts';
import { SUBCATEGORIES, resolveSubcategory, type PreferenceSet, type Subcategory } from '@xyp/contracts';

/** z of a two-sided 95% normal interval (Φ⁻¹(0.975)). */
export const WILSON_Z95 = 1.959964;

/** One held-out pair scored by a reward model. */
export interface ScoredPair {
  /** A subcategory id, Chinese name or English label of `SUBCATEGORIES`, or the user's own category. */
  category: string;
  set: PreferenceSet;
  /** r(x, y^c) and r(x, y^r). */
  chosen: number;
  rejected: number;
}

/** Counts and rate of a group of pairs. */
export interface AlignmentCount {
  pairs: number;
  /** Pairs with r(chosen) > r(rejected). */
  aligned: number;
  /** Pairs with r(chosen) = r(rejected) (counted as not aligned). */
  ties: number;
  /** aligned / pairs. */
  rate: number;
  /** Wilson score interval of `rate` at 95%. */
  ci95: [number, number];
}

export interface CategoryAlignment extends AlignmentCount {
  /** The subcategory id (`finance.calculation`) when the category resolves to one, else as given. */
  category: string;
  set: PreferenceSet;
  /** The seed's Chinese name and the English label, for a known subcategory. */
  name?: string;
  label?: string;
}

export interface SetAlignment extends AlignmentCount {
  /** Unweighted mean of the set's subcategory rates. */
  macroRate: number;
  /** Subcategories in the set. */
  categories: number;
}

/** One evaluation of one reward model (one training seed) on a held-out split. */
export interface AlignmentReport {
  overall: AlignmentCount;
  bySet: { finance?: SetAlignment; general?: SetAlignment };
  /** `SUBCATEGORIES` order, then unknown categories alphabetically. */
  categories: CategoryAlignment[];
}

const SETS: readonly PreferenceSet[] = ['finance', 'general'];
const BY_ID = new Map<string, { subcategory: Subcategory; order: number }>(SUBCATEGORIES.map((s, order) => [s.id, { subcategory: s, order }]));

/**
 * Wilson score interval of k successes in n trials (formula in the header), clamped to [0, 1].
 * Accepts a fractional k (a mean count over runs).
 */
export function wilsonInterval(k: number, n: number, z = WILSON_Z95): [number, number] {
  if (!(n > 0) || !(k >= 0) || k > n) throw new RangeError(`wilsonInterval: need 0 ≤ k ≤ n and n > 0 (got k = ${k}, n = ${n})`);
  const p = k / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

/** The category a pair is counted under: the subcategory id when its name resolves in the pair's set, else as given. */
function categoryKey(category: string, set: PreferenceSet): string {
  const known = resolveSubcategory(category);
  return known && known.set === set ? known.id : category;
}

function subcategoryOf(category: string, set: PreferenceSet): Subcategory | undefined {
  const known = BY_ID.get(category)?.subcategory;
  return known && known.set === set ? known : undefined;
}

/** Order of categories: `SUBCATEGORIES` first (in its order), then unknown ones alphabetically (then by set). */
function compareCategories(a: { category: string; set: PreferenceSet }, b: { category: string; set: PreferenceSet }): number {
  const rank = (c: { category: string; set: PreferenceSet }) => (subcategoryOf(c.category, c.set) ? (BY_ID.get(c.category)?.order ?? SUBCATEGORIES.length) : SUBCATEGORIES.length);
  const byRank = rank(a) - rank(b);
  if (byRank !== 0) return byRank;
  if (a.category !== b.category) return a.category < b.category ? -1 : 1;
  return SETS.indexOf(a.set) - SETS.indexOf(b.set);
}

function count(pairs: number, aligned: number, ties: number): AlignmentCount {
  return { pairs, aligned, ties, rate: aligned / pairs, ci95: wilsonInterval(aligned, pairs) };
}

/**
 * Alignment rate per subcategory, per set (pooled and macro) and overall, for one reward model's
 * scores on held-out pairs. Throws on no pairs and on a score that is not a finite number (a NaN
 * would silently count as not aligned).
 */
export function alignmentByCategory(scored: readonly ScoredPair[]): AlignmentReport {
  if (scored.length === 0) throw new RangeError('alignmentByCategory: no scored pairs');
  const groups = new Map<string, { category: string; set: PreferenceSet; pairs: number; aligned: number; ties: number }>();
  scored.forEach((pair, i) => {
    if (!Number.isFinite(pair.chosen) || !Number.isFinite(pair.rejected)) {
      throw new RangeError(`alignmentByCategory: pair ${i} (${pair.set}/${pair.category}) has a score that is not a finite number (chosen ${pair.chosen}, rejected ${pair.rejected})`);
    }
    if (!SETS.includes(pair.set)) throw new RangeError(`alignmentByCategory: pair ${i} has set "${pair.set}", not one of ${SETS.join(', ')}`);
    const category = categoryKey(pair.category, pair.set);
    const key = `${pair.set}\u0000${category}`;
    const group = groups.get(key) ?? { category, set: pair.set, pairs: 0, aligned: 0, ties: 0 };
    group.pairs += 1;
    if (pair.chosen > pair.rejected) group.aligned += 1;
    else if (pair.chosen === pair.rejected) group.ties += 1;
    groups.set(key, group);
  });

  const categories: CategoryAlignment[] = [...groups.values()].sort(compareCategories).map((g) => {
    const known = subcategoryOf(g.category, g.set);
    return { category: g.category, set: g.set, ...(known ? { name: known.name, label: known.label } : {}), ...count(g.pairs, g.aligned, g.ties) };
  });
  const bySet: AlignmentReport['bySet'] = {};
  for (const set of SETS) {
    const members = categories.filter((c) => c.set === set);
    if (members.length === 0) continue;
    const total = (field: 'pairs' | 'aligned' | 'ties') => members.reduce((sum, c) => sum + c[field], 0);
    bySet[set] = { ...count(total('pairs'), total('aligned'), total('ties')), macroRate: mean(members.map((c) => c.rate)), categories: members.length };
  }
  const total = (field: 'pairs' | 'aligned' | 'ties') => categories.reduce((sum, c) => sum + c[field], 0);
  return { overall: count(total('pairs'), total('aligned'), total('ties')), bySet, categories };
}

/** Mean, sample standard deviation (n − 1 in the denominator; 0 for one value), min, max and n of values. */
export interface RateSummary {
  mean: number;
  std: number;
  min: number;
  max: number;
  n: number;
}

/** Fewest and most pairs over the runs (equal when every seed was evaluated on the same split). */
export interface PairRange {
  min: number;
  max: number;
}

export interface CategorySeedSummary extends RateSummary {
  category: string;
  set: PreferenceSet;
  name?: string;
  label?: string;
  pairs: PairRange;
  /**
   * Wilson interval of the mean rate for one run of the mean size (mean aligned of mean pairs):
   * the evaluation-sample uncertainty, beside `std`, the seed-to-seed spread. With one run it is
   * that run's interval.
   */
  ci95: [number, number];
}

export interface SetSeedSummary {
  /** The pooled rate (all the set's pairs) over runs, with its interval as for a category. */
  pooled: RateSummary & { ci95: [number, number] };
  /** The macro rate (mean of the set's subcategory rates) over runs. */
  macro: RateSummary;
  pairs: PairRange;
}

/** A reward model's alignment over training seeds: "mean ± std over seeds". */
export interface SeedSummary {
  runs: number;
  overall: RateSummary & { ci95: [number, number]; pairs: PairRange };
  bySet: { finance?: SetSeedSummary; general?: SetSeedSummary };
  /** In report order; a category's `n` counts the runs it appears in. */
  categories: CategorySeedSummary[];
}

/** Mean, sample std (n − 1), min, max and n of `values` (at least one). */
export function summarizeValues(values: readonly number[]): RateSummary {
  if (values.length === 0) throw new RangeError('summarizeValues: no values');
  const m = mean(values);
  const std = values.length > 1 ? Math.sqrt(values.reduce((sum, v) => sum + (v - m) ** 2, 0) / (values.length - 1)) : 0;
  return { mean: m, std, min: Math.min(...values), max: Math.max(...values), n: values.length };
}

function summarizeCounts(counts: readonly AlignmentCount[]): RateSummary & { ci95: [number, number]; pairs: PairRange } {
  const pairs = counts.map((c) => c.pairs);
  return {
    ...summarizeValues(counts.map((c) => c.rate)),
    ci95: wilsonInterval(mean(counts.map((c) => c.aligned)), mean(pairs)),
    pairs: { min: Math.min(...pairs), max: Math.max(...pairs) },
  };
}

/** Per category and per set, the alignment rates of several runs (one per training seed) summarized. */
export function summarizeSeeds(runs: readonly AlignmentReport[]): SeedSummary {
  if (runs.length === 0) throw new RangeError('summarizeSeeds: no runs');
  const byCategory = new Map<string, CategoryAlignment[]>();
  for (const run of runs) {
    for (const c of run.categories) {
      const key = `${c.set}\u0000${c.category}`;
      byCategory.set(key, [...(byCategory.get(key) ?? []), c]);
    }
  }
  const categories = [...byCategory.values()]
    .map((members) => {
      const { category, set, name, label } = members[0];
      return { category, set, ...(name !== undefined ? { name } : {}), ...(label !== undefined ? { label } : {}), ...summarizeCounts(members) };
    })
    .sort(compareCategories);
  const bySet: SeedSummary['bySet'] = {};
  for (const set of SETS) {
    const members = runs.map((run) => run.bySet[set]).filter((s): s is SetAlignment => s !== undefined);
    if (members.length === 0) continue;
    const { pairs, ...pooled } = summarizeCounts(members);
    bySet[set] = { pooled, macro: summarizeValues(members.map((s) => s.macroRate)), pairs };
  }
  return { runs: runs.length, overall: summarizeCounts(runs.map((run) => run.overall)), bySet, categories };
}

/** A reward model (UFRM, an ablation, …) and its evaluations, one per training seed. */
export interface AlignmentVariant {
  name: string;
  seeds: readonly AlignmentReport[];
}

/** One cell of a table: a variant's rate over seeds (fractions, not percentages). */
export interface AlignmentCell extends RateSummary {
  pairs: PairRange;
}

export interface AlignmentTableRow {
  category: string;
  name?: string;
  label?: string;
  /** One per variant, in the variants' order; null where a variant has no pair of the category. */
  cells: (AlignmentCell | null)[];
}

/** One of the seed's two tables. */
export interface AlignmentTable {
  set: PreferenceSet;
  title: string;
  variants: string[];
  rows: AlignmentTableRow[];
  /** The last row: the macro average of the subcategory rates, per variant. */
  average: (AlignmentCell | null)[];
  /** Under the table: the pooled rate over the set's pairs with its 95% Wilson interval, per variant. */
  pooled: ((AlignmentCell & { ci95: [number, number] }) | null)[];
}

export interface AlignmentTablesJson {
  variants: { name: string; seeds: number; summary: SeedSummary }[];
  tables: AlignmentTable[];
}

const TABLE_TITLES: Record<PreferenceSet, string> = {
  finance: 'Finance preference alignment rate (金融偏好对齐率), %',
  general: 'General preference alignment rate (通用偏好对齐率), %',
};

function summaries(variants: readonly AlignmentVariant[]): SeedSummary[] {
  if (variants.length === 0) throw new RangeError('alignment tables: no variants');
  return variants.map((v) => {
    if (v.seeds.length === 0) throw new RangeError(`alignment tables: variant "${v.name}" has no runs`);
    return summarizeSeeds(v.seeds);
  });
}

/** Categories of `set` (or of both sets) over all variants, in report order. */
function categoryRows(all: readonly SeedSummary[], set?: PreferenceSet): { category: string; set: PreferenceSet; name?: string; label?: string }[] {
  const rows = new Map<string, { category: string; set: PreferenceSet; name?: string; label?: string }>();
  for (const summary of all) {
    for (const c of summary.categories) {
      if (set && c.set !== set) continue;
      const key = `${c.set}\u0000${c.category}`;
      if (!rows.has(key)) rows.set(key, { category: c.category, set: c.set, ...(c.name !== undefined ? { name: c.name } : {}), ...(c.label !== undefined ? { label: c.label } : {}) });
    }
  }
  // Both sets: finance's subcategories, then general's, each in report order.
  return [...rows.values()].sort((a, b) => (set ? 0 : SETS.indexOf(a.set) - SETS.indexOf(b.set)) || compareCategories(a, b));
}

function cellOf(summary: RateSummary & { pairs: PairRange }): AlignmentCell {
  return { mean: summary.mean, std: summary.std, min: summary.min, max: summary.max, n: summary.n, pairs: summary.pairs };
}

const percent = (x: number) => (100 * x).toFixed(1);
const pairCount = (p: PairRange) => (p.min === p.max ? `n=${p.min}` : `n=${p.min}–${p.max}`);
const escapeCell = (text: string) => text.replace(/\|/g, '\\|');
const formatCell = (cell: AlignmentCell | null, withPairs = true) => (cell ? `${percent(cell.mean)} ± ${percent(cell.std)}${withPairs ? ` (${pairCount(cell.pairs)})` : ''}` : '—');

/**
 * The seed's two tables (finance, general): a row per subcategory (Chinese name and id), a column
 * per variant, each cell the rate's mean ± sample std over seeds in percent with its pair count,
 * the last row the macro average; under each table the pooled rate with its 95% Wilson interval.
 * A table appears when some variant has pairs of its set; a row when some variant has the category.
 */
export function alignmentTables(variants: readonly AlignmentVariant[]): { json: AlignmentTablesJson; markdown: string } {
  const all = summaries(variants);
  const names = variants.map((v) => v.name);
  const tables: AlignmentTable[] = [];
  for (const set of SETS) {
    if (all.every((s) => s.bySet[set] === undefined)) continue;
    const rows = categoryRows(all, set).map((row) => ({
      category: row.category,
      ...(row.name !== undefined ? { name: row.name } : {}),
      ...(row.label !== undefined ? { label: row.label } : {}),
      cells: all.map((s) => {
        const c = s.categories.find((x) => x.set === set && x.category === row.category);
        return c ? cellOf(c) : null;
      }),
    }));
    const average = all.map((s) => {
      const bySet = s.bySet[set];
      return bySet ? cellOf({ ...bySet.macro, pairs: bySet.pairs }) : null;
    });
    const pooled = all.map((s) => {
      const bySet = s.bySet[set];
      return bySet ? { ...cellOf({ ...bySet.pooled, pairs: bySet.pairs }), ci95: bySet.pooled.ci95 } : null;
    });
    tables.push({ set, title: TABLE_TITLES[set], variants: names, rows, average, pooled });
  }

  const lines: string[] = [];
  for (const table of tables) {
    const header = table.variants.map((name, i) => `${escapeCell(name)} (${all[i].runs} ${all[i].runs === 1 ? 'seed' : 'seeds'})`);
    lines.push(`### ${table.title}`, '', `| Subcategory | ${header.join(' | ')} |`, `| --- |${header.map(() => ' --- |').join('')}`);
    for (const row of table.rows) {
      const label = row.name ? `${row.name} \`${row.category}\`` : `\`${escapeCell(row.category)}\``;
      lines.push(`| ${label} | ${row.cells.map((c) => formatCell(c)).join(' | ')} |`);
    }
    lines.push(`| **Average (平均)** | ${table.average.map((c) => formatCell(c, false)).join(' | ')} |`, '');
    lines.push(`Pooled over all ${table.set} pairs, mean ± std over seeds [95% Wilson interval]:`);
    table.pooled.forEach((cell, i) => {
      if (cell) lines.push(`- ${table.variants[i]}: ${formatCell(cell, false)} [${percent(cell.ci95[0])}, ${percent(cell.ci95[1])}] (${pairCount(cell.pairs)})`);
      else lines.push(`- ${table.variants[i]}: —`);
    });
    lines.push('');
  }
  lines.push('Cells: alignment rate in %, the share of held-out pairs with r(chosen) > r(rejected) (ties count as not aligned), mean ± sample std over training seeds (± 0.0 for one seed), n = pairs. Average: the unweighted mean of the subcategory rates.');
  return { json: { variants: variants.map((v, i) => ({ name: v.name, seeds: v.seeds.length, summary: all[i] })), tables }, markdown: `${lines.join('\n')}\n` };
}

export interface AlignmentChartOptions {
  /** Only this set's subcategories (default both: finance, then general). */
  set?: PreferenceSet;
  title?: string;
  width?: number;
  height?: number;
}

/**
 * A PNG bar chart of the alignment rate per subcategory: one bar per variant (its mean over
 * seeds), whiskers from the min to the max over seeds (the Wilson 95% interval when a variant has
 * one seed), a dashed reference line at 0.5 (chance). Labels are the English `label`s (the
 * chart's font is ASCII); an unknown category shows as given.
 */
export function alignmentChart(variants: readonly AlignmentVariant[], options: AlignmentChartOptions = {}): Uint8Array {
  const all = summaries(variants);
  const rows = categoryRows(all, options.set);
  if (rows.length === 0) throw new RangeError(`alignmentChart: no pairs${options.set ? ` of the ${options.set} set` : ''}`);
  const plain = rows.map((r) => r.label ?? r.category);
  const categories = plain.map((label, i) => (plain.indexOf(label) !== plain.lastIndexOf(label) ? `${label} (${rows[i].set})` : label));
  const groups = variants.map((variant, v) => {
    const cells = rows.map((row) => all[v].categories.find((c) => c.set === row.set && c.category === row.category));
    const interval = (c: CategorySeedSummary | undefined, end: 0 | 1) => (c === undefined ? NaN : c.n > 1 ? (end === 0 ? c.min : c.max) : c.ci95[end]);
    return { name: variant.name, values: cells.map((c) => c?.mean ?? NaN), low: cells.map((c) => interval(c, 0)), high: cells.map((c) => interval(c, 1)) };
  });
  return barChart({
    title: options.title ?? `Reward model alignment rate${options.set ? ` (${options.set})` : ''}`,
    yLabel: 'alignment rate',
    categories,
    groups,
    yMin: 0,
    yMax: 1,
    referenceLine: { value: 0.5, label: 'chance 0.5' },
    width: options.width ?? Math.max(800, 120 + rows.length * (variants.length * 12 + 16)),
    height: options.height ?? 440,
  });
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}
