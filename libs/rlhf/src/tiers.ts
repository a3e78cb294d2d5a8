import { z } from 'zod';
import { RlhfInputError, parseWith, show } from './errors';
import { quantileType7 } from './stats';

/**
 * Tiering (report 四, 改进: "将RM对齐率和模型评测结果按照优、中、差各自分成三档"): each subdomain's
 * value — the PPO gain (net win rate against the SFT model) or the RM alignment rate — is put in
 * `good`, `mid` or `bad`.
 *
 * `{mode: 'quantile', low, high}` (defaults 1/3, 2/3): q_lo = Q7(values, low), q_hi = Q7(values,
 * high), the type-7 quantiles (numpy default) over this call's values. Then
 *
 *   bad   if v ≤ q_lo and v < q_hi
 *   good  if v ≥ q_hi and v > q_lo
 *   mid   otherwise
 *
 * With q_lo < q_hi this is simply "bad at or below q_lo, good at or above q_hi" (a value exactly
 * on a quantile goes to the outer tier). When q_lo = q_hi (one subdomain, or ties that fill the
 * middle), a value equal to that quantile is `mid`, below is `bad`, above is `good`. A tier is a
 * function of the value alone, so equal values always share a tier.
 *
 * `{mode: 'fixed', bad: x, good: y}` (x ≤ y): bad if v < x, good if v ≥ y, else mid. With x = y
 * there is no mid tier.
 */

export type Tier = 'good' | 'mid' | 'bad';

export const TierConfig = z.discriminatedUnion(
  'mode',
  [
    z
      .object({
        mode: z.literal('quantile'),
        low: z.number().min(0, { error: 'low must be in [0, 1]' }).max(1, { error: 'low must be in [0, 1]' }).default(1 / 3),
        high: z.number().min(0, { error: 'high must be in [0, 1]' }).max(1, { error: 'high must be in [0, 1]' }).default(2 / 3),
      })
      .strict()
      .refine((c) => c.low <= c.high, { error: 'low must be <= high', path: ['low'] }),
    z
      .object({
        mode: z.literal('fixed'),
        bad: z.number({ error: 'bad must be a finite number' }),
        good: z.number({ error: 'good must be a finite number' }),
      })
      .strict()
      .refine((c) => c.bad <= c.good, { error: 'bad must be <= good', path: ['bad'] }),
  ],
  { error: "mode must be 'quantile' or 'fixed'" },
);
export type TierConfig = z.output<typeof TierConfig>;
export type TierConfigInput = z.input<typeof TierConfig>;

export interface TierRecord {
  subdomain: string;
  value: number;
  tier: Tier;
  reason: string;
}

export interface TierResult {
  tiers: Record<string, Tier>;
  /** The cut points used: q_lo/q_hi (quantile mode) or bad/good (fixed). */
  cuts: { mode: 'quantile' | 'fixed'; bad: number; good: number };
  records: TierRecord[];
}

const f4 = (x: number) => x.toFixed(4);

/**
 * Good / mid / bad per subdomain; see the module comment for the boundary rules. `what` names the
 * quantity in errors and reasons (e.g. 'ppo gain', 'rm alignment').
 */
export function tierValues(values: Readonly<Record<string, number>>, configInput: TierConfigInput, what = 'values'): TierResult {
  const config = parseWith(TierConfig, configInput, 'config');
  if (values === null || typeof values !== 'object') throw new RlhfInputError(`${what}: must be a record of subdomain → number, got ${show(values)}`, what);
  const entries = Object.entries(values);
  if (entries.length === 0) throw new RlhfInputError(`${what}: no subdomains to tier`, what);
  for (const [sub, v] of entries) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new RlhfInputError(`${what}.${sub}: must be a finite number, got ${show(v)}`, `${what}.${sub}`);
  }
  const xs = entries.map(([, v]) => v);
  const [lo, hi] = config.mode === 'quantile' ? [quantileType7(xs, config.low), quantileType7(xs, config.high)] : [config.bad, config.good];
  const tierOf = (v: number): Tier => {
    if (config.mode === 'fixed') return v < lo ? 'bad' : v >= hi ? 'good' : 'mid';
    if (v <= lo && v < hi) return 'bad';
    if (v >= hi && v > lo) return 'good';
    return 'mid';
  };
  const records = entries.map(([subdomain, value]): TierRecord => {
    const tier = tierOf(value);
    const rule =
      config.mode === 'fixed'
        ? tier === 'bad'
          ? `< bad ${f4(lo)}`
          : tier === 'good'
            ? `>= good ${f4(hi)}`
            : `in [${f4(lo)}, ${f4(hi)})`
        : tier === 'bad'
          ? `<= q${config.low.toFixed(3)} = ${f4(lo)}`
          : tier === 'good'
            ? `>= q${config.high.toFixed(3)} = ${f4(hi)}`
            : lo === hi
              ? `= q${config.low.toFixed(3)} = q${config.high.toFixed(3)} = ${f4(lo)}`
              : `in (${f4(lo)}, ${f4(hi)})`;
    return { subdomain, value, tier, reason: `${what} ${f4(value)} ${rule} → ${tier}` };
  });
  return { tiers: Object.fromEntries(records.map((r) => [r.subdomain, r.tier])), cuts: { mode: config.mode, bad: lo, good: hi }, records };
}
