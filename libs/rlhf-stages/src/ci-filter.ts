/**
 * `rlhf.ci-filter` (seed 五): n responses per finance prompt from the SFT policy, each scored by
 * UFRM; per prompt the mean and standard deviation; `ciFilter` of `@xyp/rlhf` drops low-std prompts
 * and prompts whose mean is above or below the thresholds, then keeps a std-weighted sample that
 * holds each subdomain's proportion. Every prompt is accounted for, kept or dropped by a named rule.
 */
import type { TextReward } from '@xyp/contracts';
import type { LocalEngine } from '@xyp/local-engine';
import { ciFilter, mean, quantileType7, sampleStd, type CiFilterConfigInput, type CiFilterResult } from '@xyp/rlhf';
import { lineChart } from '@xyp/charts';
import type { RlhfPrompt } from './prompts';

export interface CiFilterRun {
  policy: string;
  reward: TextReward;
  prompts: readonly RlhfPrompt[];
  samples: number;
  maxTokens: number;
  temperature: number;
  seed: number;
  /** The filter's settings; `minStd` may be a quantile of the prompts' score stds, resolved here. */
  filter: Omit<CiFilterConfigInput, 'minStd'> & { minStd: { absolute: number } | { quantile: number } };
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, what: string) => void | Promise<void>;
}

export interface CiFilterOutput {
  result: CiFilterResult;
  kept: RlhfPrompt[];
  /** Each subdomain's share of the kept prompts: the first PPO round's data ratios. */
  ratios: Record<string, number>;
  /** Every prompt's scores, in input order. */
  scored: { id: string; subdomain: string; scores: number[]; responses: string[] }[];
}

/** Prompts per generate call: bounds memory and gives progress between calls. */
const CHUNK = 16;

export async function runCiFilter(engine: LocalEngine, run: CiFilterRun): Promise<CiFilterOutput> {
  if (run.prompts.length === 0) throw new Error('rlhf.ci-filter: prompts: no prompt to filter');
  const scored: CiFilterOutput['scored'] = [];
  for (let start = 0; start < run.prompts.length; start += CHUNK) {
    run.signal?.throwIfAborted();
    const chunk = run.prompts.slice(start, start + CHUNK);
    const generated = await engine.generate({ checkpoint: run.policy, prompts: chunk.map((p) => p.prompt), chat: true, n: run.samples, temperature: run.temperature, maxTokens: run.maxTokens, seed: run.seed + start });
    const responses = chunk.map(() => [] as string[]);
    for (const g of generated) responses[g.prompt].push(g.text);
    const items = chunk.flatMap((p, i) => responses[i].map((response) => ({ prompt: p.prompt, response, category: p.subdomain })));
    const scores = await run.reward(items, { signal: run.signal });
    let at = 0;
    chunk.forEach((p, i) => {
      scored.push({ id: p.id, subdomain: p.subdomain, scores: scores.slice(at, at + responses[i].length), responses: responses[i] });
      at += responses[i].length;
    });
    await run.onProgress?.(Math.min(run.prompts.length, start + CHUNK), run.prompts.length, 'prompts');
  }
  const stds = scored.filter((s) => s.scores.length > 1).map((s) => sampleStd(s.scores));
  const minStd = 'absolute' in run.filter.minStd ? run.filter.minStd.absolute : stds.length > 0 ? quantileType7(stds, run.filter.minStd.quantile) : 0;
  const result = ciFilter(
    scored.map((s) => ({ id: s.id, subdomain: s.subdomain, scores: s.scores })),
    { ...run.filter, minStd },
  );
  const byId = new Map(run.prompts.map((p) => [p.id, p]));
  const kept = result.kept.map((k) => byId.get(k.id) as RlhfPrompt);
  const ratios: Record<string, number> = {};
  for (const k of kept) ratios[k.subdomain] = (ratios[k.subdomain] ?? 0) + 1 / kept.length;
  return { result, kept, ratios, scored };
}

/** Histogram counts of `values` over `bins` equal bins of [lo, hi]: points at the bin centres. */
function histogram(values: readonly number[], lo: number, hi: number, bins: number): [number, number][] {
  const width = (hi - lo) / bins || 1;
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)))] += 1;
  return counts.map((c, i) => [lo + (i + 0.5) * width, c]);
}

/** PNGs of the filter: the distribution of prompt means and of prompt stds, per subdomain. */
export function ciFilterCharts(scored: CiFilterOutput['scored']): Record<string, Uint8Array> {
  // The statistics `ciFilter` judges by (a prompt without two scores is drawn at 0).
  const stats = scored.map((s) => ({ subdomain: s.subdomain, mean: s.scores.length > 0 ? mean(s.scores) : 0, std: s.scores.length > 1 ? sampleStd(s.scores) : 0 }));
  const subdomains = [...new Set(stats.map((s) => s.subdomain))].sort();
  const chart = (key: 'mean' | 'std', title: string, xLabel: string) => {
    const all = stats.map((s) => s[key]).filter(Number.isFinite);
    const lo = Math.min(...all);
    const hi = Math.max(...all);
    return lineChart({ title, xLabel, yLabel: 'prompts', series: subdomains.map((name) => ({ name, points: histogram(stats.filter((s) => s.subdomain === name).map((s) => s[key]), lo, hi, 12) })) });
  };
  return {
    'ci-means.png': chart('mean', 'UFRM score mean per prompt, by subdomain', 'mean score'),
    'ci-stds.png': chart('std', 'UFRM score std per prompt, by subdomain', 'std of scores'),
  };
}

/** The filter's report: per subdomain, how many prompts each rule dropped, and the thresholds used. */
export function ciFilterMarkdown(result: CiFilterResult): string {
  const rows = Object.entries(result.bySubdomain).map(([s, c]) => `| ${s} | ${c.input} | ${c.invalid} | ${c.lowStd} | ${c.meanAbove} | ${c.meanBelow} | ${c.notSampled} | ${c.kept} |`);
  return [
    '# Confidence-interval filter',
    '',
    `thresholds: ${JSON.stringify(result.thresholds)}`,
    '',
    '| subdomain | prompts | invalid | std below min | mean above | mean below | not sampled | kept |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
