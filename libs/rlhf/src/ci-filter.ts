import { createRng, deriveSeed } from '@xyp/random';
import { z } from 'zod';
import { CiFilterEmptyError, RlhfInputError, parseWith, show } from './errors';
import { largestRemainder, mean, quantileType7, sampleStd } from './stats';

/**
 * Confidence-interval prompt filter (XuanYuan3 report, 五 金融能力对齐：置信区间过滤).
 *
 * For every finance prompt the SFT model sampled n responses and the reward model (UFRM) scored
 * them. Per prompt: mean m and *sample* standard deviation s (divisor n − 1, numpy `ddof=1`).
 *
 *   invalid      no subdomain, fewer than 2 scores, a non-finite score, or an id seen before
 *   rule 1       s < minStd                         → `low-std`   (the SFT model's answers are too
 *                                                     alike: no room for PPO to optimise)
 *   rule 2       m > upper  → `mean-above`;  m < lower → `mean-below`   (the RM is least reliable
 *                at the extremes of its range). A threshold is `{absolute: x}` or `{quantile: q}`,
 *                the type-7 quantile (numpy default, linear) of the means of the prompts that
 *                survived rule 1. A mean exactly at a threshold is kept.
 *   rule 3       of the N survivors keep K = `keep.count` (at most N) or round-half-up(fraction·N):
 *                each subdomain gets its largest-remainder quota of K by its share of the N
 *                survivors (so each count is within one of K·N_s/N), and inside a subdomain the
 *                quota is a weighted sample without replacement with weights ∝ s (Efraimidis &
 *                Spirakis 2006, A-ES: key = ln(u)/s, the largest keys win — the same law as drawing
 *                one at a time with probability ∝ s). u comes from SplitMix32 seeded with
 *                deriveSeed(seed, 'ci-filter', subdomain), after ordering the subdomain's prompts
 *                by s descending then id, so the draw does not depend on the input order.
 *                The rest are dropped as `not-sampled`. Prompts with s = 0 (only when minStd = 0)
 *                have key −∞ and are drawn last, in that order.
 *
 * Every input prompt ends in `kept` or in `dropped` exactly once. `kept` is ordered by s
 * descending (ties by id). If a rule leaves no prompt, `CiFilterEmptyError` names that rule.
 */

export type CiDropRule = 'invalid' | 'low-std' | 'mean-above' | 'mean-below' | 'not-sampled';

/** The subdomain key under which prompts without one are counted. */
export const MISSING_SUBDOMAIN = '(missing)';

export interface CiPrompt {
  id: string;
  subdomain?: string | null;
  /** UFRM scores of the n sampled responses. */
  scores: readonly number[];
}

const Threshold = z.union([
  z.object({ absolute: z.number({ error: 'absolute must be a finite number' }) }).strict(),
  z.object({ quantile: z.number({ error: 'quantile must be a number in [0, 1]' }).min(0, { error: 'quantile must be in [0, 1]' }).max(1, { error: 'quantile must be in [0, 1]' }) }).strict(),
], { error: 'a threshold is {absolute: x} or {quantile: q} with q in [0, 1]' });
export type CiThreshold = z.infer<typeof Threshold>;

const Keep = z.union([
  z.object({ count: z.number().int({ error: 'count must be an integer >= 1' }).min(1, { error: 'count must be an integer >= 1' }) }).strict(),
  z.object({ fraction: z.number().gt(0, { error: 'fraction must be in (0, 1]' }).max(1, { error: 'fraction must be in (0, 1]' }) }).strict(),
], { error: 'keep is {count: k} (integer >= 1) or {fraction: f} with f in (0, 1]' });

export const CiFilterConfig = z
  .object({
    /** Rule 1: prompts whose sample std of scores is below this are dropped. */
    minStd: z.number({ error: 'minStd must be a finite number >= 0' }).min(0, { error: 'minStd must be a finite number >= 0' }),
    /** Rule 2: prompts whose mean score is above this are dropped (none when absent). */
    upper: Threshold.optional(),
    /** Rule 2: prompts whose mean score is below this are dropped (none when absent). */
    lower: Threshold.optional(),
    /** Rule 3: how many of the survivors to keep (default all: {fraction: 1}). */
    keep: Keep.default({ fraction: 1 }),
    /** Seed of the std-weighted draw. */
    seed: z.number({ error: 'seed must be a safe integer' }).int({ error: 'seed must be a safe integer' }).refine(Number.isSafeInteger, { error: 'seed must be a safe integer' }),
  })
  .strict();
export type CiFilterConfig = z.output<typeof CiFilterConfig>;
export type CiFilterConfigInput = z.input<typeof CiFilterConfig>;

export interface CiKeptPrompt {
  id: string;
  subdomain: string;
  mean: number;
  std: number;
  n: number;
}

export interface CiDroppedPrompt {
  id: string;
  /** Null when the prompt had none. */
  subdomain: string | null;
  rule: CiDropRule;
  /** Null when it could not be computed (invalid prompts). */
  mean: number | null;
  std: number | null;
  reason: string;
}

export interface CiSubdomainCounts {
  input: number;
  invalid: number;
  lowStd: number;
  meanAbove: number;
  meanBelow: number;
  notSampled: number;
  kept: number;
}

export interface CiResolvedThreshold {
  spec: CiThreshold;
  /** The threshold on the mean score actually applied. */
  value: number;
}

export interface CiFilterResult {
  kept: CiKeptPrompt[];
  dropped: CiDroppedPrompt[];
  bySubdomain: Record<string, CiSubdomainCounts>;
  thresholds: {
    minStd: number;
    upper: CiResolvedThreshold | null;
    lower: CiResolvedThreshold | null;
    /** K and how it was asked for; `survivors` = N, the prompts left after rules 1 and 2. */
    keep: { spec: { count: number } | { fraction: number }; survivors: number; count: number };
    /** Rule 3's per-subdomain quota of K. */
    quotas: Record<string, number>;
    seed: number;
  };
}

interface Scored {
  id: string;
  subdomain: string;
  mean: number;
  std: number;
  n: number;
}

const f4 = (x: number) => x.toFixed(4);

function emptyCounts(): CiSubdomainCounts {
  return { input: 0, invalid: 0, lowStd: 0, meanAbove: 0, meanBelow: 0, notSampled: 0, kept: 0 };
}

function byStdDesc(a: { std: number; id: string }, b: { std: number; id: string }): number {
  return b.std - a.std || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function resolveThreshold(spec: CiThreshold | undefined, means: readonly number[]): CiResolvedThreshold | null {
  if (!spec) return null;
  return { spec, value: 'absolute' in spec ? spec.absolute : quantileType7(means, spec.quantile) };
}

function describeThreshold(t: CiResolvedThreshold): string {
  return 'absolute' in t.spec ? `${f4(t.value)}` : `${f4(t.value)} (the ${t.spec.quantile} quantile of the rule-1 survivors' means)`;
}

/** The confidence-interval filter over per-prompt UFRM scores; see the module comment. */
export function ciFilter(prompts: readonly CiPrompt[], configInput: CiFilterConfigInput): CiFilterResult {
  const config = parseWith(CiFilterConfig, configInput, 'config');
  if (!Array.isArray(prompts)) throw new RlhfInputError(`prompts: must be an array, got ${show(prompts)}`, 'prompts');

  const dropped: CiDroppedPrompt[] = [];
  const bySubdomain: Record<string, CiSubdomainCounts> = {};
  const counts = (sub: string): CiSubdomainCounts => (bySubdomain[sub] ??= emptyCounts());
  const seen = new Set<string>();
  const valid: Scored[] = [];

  prompts.forEach((p, i) => {
    if (p === null || typeof p !== 'object' || typeof p.id !== 'string' || p.id.length === 0) {
      throw new RlhfInputError(`prompts[${i}].id: every prompt needs a non-empty string id, got ${show((p as { id?: unknown } | null)?.id)}`, `prompts[${i}].id`);
    }
    const sub = typeof p.subdomain === 'string' && p.subdomain.trim().length > 0 ? p.subdomain : null;
    const key = sub ?? MISSING_SUBDOMAIN;
    counts(key).input += 1;
    const scores: readonly unknown[] | null = Array.isArray(p.scores) ? (p.scores as readonly unknown[]) : null;
    const invalid = (reason: string, m: number | null = null, s: number | null = null) => {
      counts(key).invalid += 1;
      dropped.push({ id: p.id, subdomain: sub, rule: 'invalid', mean: m, std: s, reason });
    };
    if (seen.has(p.id)) return invalid(`prompt ${p.id}: duplicate id (an earlier prompt has it); only the first is filtered`);
    seen.add(p.id);
    if (sub === null) return invalid(`prompt ${p.id}: missing or empty subdomain, got ${show(p.subdomain)}`);
    if (scores === null) return invalid(`prompt ${p.id}: scores must be an array of numbers, got ${show(p.scores)}`);
    const bad = scores.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
    if (bad >= 0) return invalid(`prompt ${p.id}: score ${bad} is not a finite number (got ${show(scores[bad])})`);
    if (scores.length < 2) return invalid(`prompt ${p.id}: ${scores.length} score(s); a sample std needs at least 2`);
    const xs = scores as readonly number[];
    valid.push({ id: p.id, subdomain: sub, mean: mean(xs), std: sampleStd(xs), n: xs.length });
  });
  if (valid.length === 0) {
    throw new CiFilterEmptyError(`ciFilter: all ${prompts.length} prompts are invalid (rule invalid); nothing to filter`, 'invalid');
  }

  // Rule 1: spread of the RM scores.
  const afterStd: Scored[] = [];
  for (const s of valid) {
    if (s.std < config.minStd) {
      counts(s.subdomain).lowStd += 1;
      dropped.push({ id: s.id, subdomain: s.subdomain, rule: 'low-std', mean: s.mean, std: s.std, reason: `std ${f4(s.std)} < minStd ${f4(config.minStd)}: the sampled responses score too alike` });
    } else afterStd.push(s);
  }
  if (afterStd.length === 0) {
    throw new CiFilterEmptyError(`ciFilter: rule low-std dropped all ${valid.length} valid prompts (every std < minStd ${config.minStd})`, 'low-std');
  }

  // Rule 2: mean inside [lower, upper], thresholds over the rule-1 survivors.
  const means = afterStd.map((s) => s.mean);
  const upper = resolveThreshold(config.upper, means);
  const lower = resolveThreshold(config.lower, means);
  if (upper && lower && lower.value > upper.value) {
    throw new RlhfInputError(`config.lower: resolves to ${f4(lower.value)}, above config.upper's ${f4(upper.value)}; no mean can pass`, 'config.lower');
  }
  const survivors: Scored[] = [];
  let above = 0;
  let below = 0;
  for (const s of afterStd) {
    if (upper && s.mean > upper.value) {
      above += 1;
      counts(s.subdomain).meanAbove += 1;
      dropped.push({ id: s.id, subdomain: s.subdomain, rule: 'mean-above', mean: s.mean, std: s.std, reason: `mean ${f4(s.mean)} > upper ${describeThreshold(upper)}: the RM is unreliable this high` });
    } else if (lower && s.mean < lower.value) {
      below += 1;
      counts(s.subdomain).meanBelow += 1;
      dropped.push({ id: s.id, subdomain: s.subdomain, rule: 'mean-below', mean: s.mean, std: s.std, reason: `mean ${f4(s.mean)} < lower ${describeThreshold(lower)}: the RM is unreliable this low` });
    } else survivors.push(s);
  }
  if (survivors.length === 0) {
    const rule = below === 0 ? 'mean-above' : above === 0 ? 'mean-below' : 'mean-range';
    throw new CiFilterEmptyError(`ciFilter: rule ${rule} dropped all ${afterStd.length} prompts left after low-std (${above} above upper, ${below} below lower)`, rule);
  }

  // Rule 3: std-weighted draw of K, subdomain shares kept by largest remainder.
  const N = survivors.length;
  const K = 'count' in config.keep ? Math.min(config.keep.count, N) : Math.floor(config.keep.fraction * N + 0.5);
  if (K === 0) {
    throw new CiFilterEmptyError(`ciFilter: rule not-sampled keeps none: keep.fraction ${'fraction' in config.keep ? config.keep.fraction : ''} of ${N} survivors rounds to 0`, 'not-sampled');
  }
  const groups = new Map<string, Scored[]>();
  for (const s of survivors) {
    const g = groups.get(s.subdomain);
    if (g) g.push(s);
    else groups.set(s.subdomain, [s]);
  }
  const sortedGroups = [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const sortedSubs = sortedGroups.map(([sub]) => sub);
  const quotas = largestRemainder(new Map(sortedGroups.map(([sub, g]) => [sub, g.length] as const)), K);
  const kept: CiKeptPrompt[] = [];
  for (const [sub, members] of sortedGroups) {
    const group = [...members].sort(byStdDesc);
    const quota = quotas.get(sub) ?? 0;
    const rng = createRng(deriveSeed(config.seed, 'ci-filter', sub));
    const keyed = group.map((s, order) => {
      const u = 1 - rng.nextFloat(); // (0, 1]
      return { s, order, key: s.std > 0 ? Math.log(u) / s.std : -Infinity };
    });
    keyed.sort((a, b) => b.key - a.key || a.order - b.order || 0);
    keyed.forEach(({ s }, rank) => {
      if (rank < quota) {
        counts(sub).kept += 1;
        kept.push({ id: s.id, subdomain: s.subdomain, mean: s.mean, std: s.std, n: s.n });
      } else {
        counts(sub).notSampled += 1;
        dropped.push({ id: s.id, subdomain: s.subdomain, rule: 'not-sampled', mean: s.mean, std: s.std, reason: `not drawn: ${sub} keeps ${quota} of its ${group.length} survivors (std-weighted sample, seed ${config.seed})` });
      }
    });
  }
  kept.sort(byStdDesc);

  return {
    kept,
    dropped,
    bySubdomain,
    thresholds: {
      minStd: config.minStd,
      upper,
      lower,
      keep: { spec: config.keep, survivors: N, count: K },
      quotas: Object.fromEntries(sortedSubs.map((sub) => [sub, quotas.get(sub) ?? 0])),
      seed: config.seed,
    },
  };
}
