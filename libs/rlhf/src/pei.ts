import { z } from 'zod';
import { RlhfInputError, parseWith, show } from './errors';
import type { Tier } from './tiers';

/**
 * The PEI-RLHF "improve" step (report 四): attribute each subdomain's PPO result to its tiers
 * and move its share of the next round's PPO prompts.
 *
 *   |            | RM good | RM mid | RM bad |
 *   |------------|---------|--------|--------|
 *   | PPO good   |   —     |   ↑    |   —    |
 *   | PPO mid    |   ↑     |   —    |   ↓    |
 *   | PPO bad    |   ↑↑    |   ↓    |   ↓↓   |
 *
 * Reading: where the RM judges a subdomain well, more PPO data helps (↑, and ↑↑ where PPO has
 * not yet gained); where the RM is weak and PPO did not gain, more data mostly trains on reward
 * noise (↓, ↓↓). A subdomain already good on both, or gaining in spite of a weak RM, is held.
 *
 * Steps are multiplicative (a ratio never turns negative and a zero stays zero):
 *   afterStep = before · factor,  factor ∈ {upUp, up, 1, down, downDown}
 *   floored   = max(afterStep, minRatio)
 *   after     = floored / Σ floored            (renormalised to sum 1)
 * `before` is the input ratios normalised to sum 1. The floor is applied before renormalising, as
 * the recipe says, so an `after` can end slightly below minRatio when others grew.
 */

export type PeiAction = 'up-up' | 'up' | 'hold' | 'down' | 'down-down';

/** The grid: PEI_GRID[ppoTier][rmTier]. */
export const PEI_GRID: Readonly<Record<Tier, Readonly<Record<Tier, PeiAction>>>> = Object.freeze({
  good: Object.freeze({ good: 'hold', mid: 'up', bad: 'hold' }),
  mid: Object.freeze({ good: 'up', mid: 'hold', bad: 'down' }),
  bad: Object.freeze({ good: 'up-up', mid: 'down', bad: 'down-down' }),
});

const ARROW: Record<PeiAction, string> = { 'up-up': '↑↑', up: '↑', hold: '—', down: '↓', 'down-down': '↓↓' };

export const PeiGridConfig = z
  .object({
    up: z.number().min(1, { error: 'up must be a factor >= 1' }).default(1.25),
    upUp: z.number().min(1, { error: 'upUp must be a factor >= 1' }).default(1.5),
    down: z.number().gt(0, { error: 'down must be a factor in (0, 1]' }).max(1, { error: 'down must be a factor in (0, 1]' }).default(0.8),
    downDown: z.number().gt(0, { error: 'downDown must be a factor in (0, 1]' }).max(1, { error: 'downDown must be a factor in (0, 1]' }).default(0.6),
    /** Floor on a ratio after the step, before renormalising. */
    minRatio: z.number().min(0, { error: 'minRatio must be in [0, 1)' }).lt(1, { error: 'minRatio must be in [0, 1)' }).default(0.01),
  })
  .strict()
  .refine((c) => c.upUp >= c.up, { error: 'upUp must be >= up', path: ['upUp'] })
  .refine((c) => c.downDown <= c.down, { error: 'downDown must be <= down', path: ['downDown'] });
export type PeiGridConfig = z.output<typeof PeiGridConfig>;
export type PeiGridConfigInput = z.input<typeof PeiGridConfig>;

export interface PeiGridRecord {
  subdomain: string;
  ppoTier: Tier;
  rmTier: Tier;
  action: PeiAction;
  factor: number;
  before: number;
  afterStep: number;
  /** afterStep raised to minRatio. */
  floored: boolean;
  after: number;
  reason: string;
}

export interface PeiGridResult {
  ratios: Record<string, number>;
  records: PeiGridRecord[];
  /** max |after − before| over subdomains: the `ratioMoves` of `peiStop`. */
  maxMove: number;
  notes: string[];
  config: PeiGridConfig;
}

const TIERS: readonly Tier[] = ['good', 'mid', 'bad'];
const f4 = (x: number) => x.toFixed(4);

function checkTiers(tiers: Readonly<Record<string, Tier>>, name: string, subs: readonly string[]): void {
  if (tiers === null || typeof tiers !== 'object') throw new RlhfInputError(`${name}: must be a record of subdomain → tier, got ${show(tiers)}`, name);
  for (const sub of subs) {
    const t = tiers[sub];
    if (t === undefined) throw new RlhfInputError(`${name}.${sub}: subdomain ${sub} has a ratio but no ${name === 'ppoTiers' ? 'PPO' : 'RM'} tier`, `${name}.${sub}`);
    if (!TIERS.includes(t)) throw new RlhfInputError(`${name}.${sub}: tier must be good, mid or bad, got ${show(t)}`, `${name}.${sub}`);
  }
  for (const sub of Object.keys(tiers)) {
    if (!subs.includes(sub)) throw new RlhfInputError(`${name}.${sub}: subdomain ${sub} has a tier but no ratio`, `${name}.${sub}`);
  }
}

/** One PEI improve step over the subdomain ratios; see the module comment. */
export function applyPeiGrid(
  ratios: Readonly<Record<string, number>>,
  ppoTiers: Readonly<Record<string, Tier>>,
  rmTiers: Readonly<Record<string, Tier>>,
  configInput: PeiGridConfigInput = {},
): PeiGridResult {
  const config = parseWith(PeiGridConfig, configInput, 'config');
  if (ratios === null || typeof ratios !== 'object') throw new RlhfInputError(`ratios: must be a record of subdomain → ratio, got ${show(ratios)}`, 'ratios');
  const subs = Object.keys(ratios);
  if (subs.length === 0) throw new RlhfInputError('ratios: no subdomains', 'ratios');
  for (const sub of subs) {
    const r = ratios[sub];
    if (typeof r !== 'number' || !Number.isFinite(r) || r < 0) throw new RlhfInputError(`ratios.${sub}: must be a finite number >= 0, got ${show(r)}`, `ratios.${sub}`);
  }
  checkTiers(ppoTiers, 'ppoTiers', subs);
  checkTiers(rmTiers, 'rmTiers', subs);
  const total = subs.reduce((a, s) => a + ratios[s], 0);
  if (!(total > 0)) throw new RlhfInputError('ratios: sum to 0; nothing to move', 'ratios');
  const notes: string[] = [];
  if (Math.abs(total - 1) > 1e-9) notes.push(`input ratios summed to ${total}; normalised to 1 before the step`);

  const factorOf: Record<PeiAction, number> = { 'up-up': config.upUp, up: config.up, hold: 1, down: config.down, 'down-down': config.downDown };
  const staged = subs.map((subdomain) => {
    const before = ratios[subdomain] / total;
    const ppoTier = ppoTiers[subdomain];
    const rmTier = rmTiers[subdomain];
    const action = PEI_GRID[ppoTier][rmTier];
    const factor = factorOf[action];
    const afterStep = before * factor;
    const floored = afterStep < config.minRatio;
    return { subdomain, ppoTier, rmTier, action, factor, before, afterStep, floored, value: floored ? config.minRatio : afterStep };
  });
  const sum = staged.reduce((a, s) => a + s.value, 0);
  const records = staged.map((s): PeiGridRecord => {
    const after = s.value / sum;
    const floor = s.floored ? `, floored to ${f4(config.minRatio)}` : '';
    const reason = `PPO ${s.ppoTier}, RM ${s.rmTier} → ${s.action} (${ARROW[s.action]} ×${s.factor}): ${f4(s.before)} → ${f4(s.afterStep)}${floor} → ${f4(after)} after renormalising (÷ ${f4(sum)})`;
    return { subdomain: s.subdomain, ppoTier: s.ppoTier, rmTier: s.rmTier, action: s.action, factor: s.factor, before: s.before, afterStep: s.afterStep, floored: s.floored, after, reason };
  });
  const maxMove = Math.max(...records.map((r) => Math.abs(r.after - r.before)));
  return { ratios: Object.fromEntries(records.map((r) => [r.subdomain, r.after])), records, maxMove, notes, config };
}

export const KlScheduleConfig = z
  .object({
    /** Multiplier per improve round; < 1 releases the constraint ("逐步减小KL权重"). */
    factor: z.number().gt(0, { error: 'factor must be in (0, 1]' }).max(1, { error: 'factor must be in (0, 1]' }),
    /** The KL coefficient never goes below this. */
    min: z.number().min(0, { error: 'min must be a finite number >= 0' }),
  })
  .strict();
export type KlScheduleConfig = z.output<typeof KlScheduleConfig>;

export interface KlStep {
  kl: number;
  floored: boolean;
  reason: string;
}

/**
 * Next round's KL coefficient: max(kl · factor, min), the seed's gradual release of the constraint.
 * Given the round's measured KL to the reference (`measured`: nats per response, and the bound the
 * evaluation holds it to), a round whose KL went past the bound gets the coefficient back up instead,
 * kl / factor (an adaptive KL controller's step), so the next round is held closer, not released further.
 */
export function nextKl(kl: number, configInput: KlScheduleConfig, measured?: { kl: number; bound: number }): KlStep {
  const config = parseWith(KlScheduleConfig, configInput, 'config');
  if (typeof kl !== 'number' || !Number.isFinite(kl) || kl < 0) throw new RlhfInputError(`kl: must be a finite number >= 0, got ${show(kl)}`, 'kl');
  if (measured && Number.isFinite(measured.kl) && measured.kl > measured.bound) {
    const raised = kl / config.factor;
    return { kl: raised, floored: false, reason: `the round's KL to the reference, ${measured.kl} nats/response, is above the bound ${measured.bound}: KL ${kl} / ${config.factor} = ${raised} (raised, not lowered)` };
  }
  const stepped = kl * config.factor;
  const floored = stepped < config.min;
  const next = floored ? config.min : stepped;
  return { kl: next, floored, reason: floored ? `KL ${kl} × ${config.factor} = ${stepped} is below the floor ${config.min}; KL ${next}` : `KL ${kl} × ${config.factor} = ${next}` };
}

export type PeiStopCondition = 'max-rounds' | 'ratios-settled' | 'no-gain';

export interface PeiStopInput {
  /** The round just finished (1 = the first improve round). */
  round: number;
  maxRounds: number;
  /** max |Δratio| of the round, or the per-subdomain moves (their max |·| is used). */
  ratioMoves: number | Readonly<Record<string, number>>;
  /** Per-subdomain gain (net win rate against the previous model); null = not judged. */
  gains: Readonly<Record<string, number | null>>;
  epsilon: number;
}

export interface PeiStopDecision {
  continue: boolean;
  /** Every stop condition that holds, in precedence order; the first is the reason given. */
  conditions: PeiStopCondition[];
  reason: string;
}

const PeiStopInputSchema = z.object({
  round: z.number().int({ error: 'round must be an integer >= 0' }).min(0, { error: 'round must be an integer >= 0' }),
  maxRounds: z.number().int({ error: 'maxRounds must be an integer >= 1' }).min(1, { error: 'maxRounds must be an integer >= 1' }),
  ratioMoves: z.union([z.number().min(0), z.record(z.string(), z.number())], { error: 'ratioMoves must be a number >= 0 or a record of finite numbers' }),
  gains: z.record(z.string(), z.number().nullable(), { error: 'gains must be a record of subdomain → number or null' }),
  epsilon: z.number().min(0, { error: 'epsilon must be a finite number >= 0' }),
});

/**
 * Whether to run another evaluate-improve round (report 四: "重复进行评估和改进两个阶段，直至改进阶段
 * 数据配比不再发生变化或改进阶段无明显收益"). Stop conditions, in precedence order (the first that
 * holds is the reason; the others that hold are named after it):
 *
 *   1. max-rounds      round ≥ maxRounds (the budget, checked first because it is unconditional)
 *   2. ratios-settled  max |Δratio| ≤ ε: the mixture no longer changes
 *   3. no-gain         every gain ≤ 0 (a null gain — no judged pair — is not a gain)
 */
export function peiStop(input: PeiStopInput): PeiStopDecision {
  const v = parseWith(PeiStopInputSchema, input, 'input');
  const moves = typeof v.ratioMoves === 'number' ? [v.ratioMoves] : Object.values(v.ratioMoves).map(Math.abs);
  const maxMove = moves.length === 0 ? 0 : Math.max(...moves);
  const gainEntries = Object.entries(v.gains);
  if (gainEntries.length === 0) throw new RlhfInputError('input.gains: no subdomain gains reported; cannot judge the round', 'input.gains');
  const gaining = gainEntries.filter(([, g]) => g !== null && g > 0);
  const judged = gainEntries.filter((e): e is [string, number] => e[1] !== null).sort((a, b) => b[1] - a[1]);
  const best: [string, number] | undefined = judged[0];
  const bestText = best ? `${best[1].toFixed(4)} in ${best[0]}` : 'none judged';

  const sentences: Record<PeiStopCondition, string> = {
    'max-rounds': `round ${v.round} reached maxRounds ${v.maxRounds}`,
    'ratios-settled': `no ratio moved by more than ε = ${v.epsilon} (max |Δratio| = ${maxMove.toFixed(4)})`,
    'no-gain': best
      ? `no subdomain gained (best gain ${bestText}; all ${gainEntries.length} ≤ 0 or not judged)`
      : `no subdomain gained (none of the ${gainEntries.length} was judged)`,
  };
  const conditions: PeiStopCondition[] = [];
  if (v.round >= v.maxRounds) conditions.push('max-rounds');
  if (maxMove <= v.epsilon) conditions.push('ratios-settled');
  if (gaining.length === 0) conditions.push('no-gain');
  if (conditions.length === 0) {
    return {
      continue: true,
      conditions,
      reason: `continue: round ${v.round} of ${v.maxRounds}, max |Δratio| ${maxMove.toFixed(4)} > ε ${v.epsilon}, ${gaining.length} of ${gainEntries.length} subdomains gained (best ${bestText}).`,
    };
  }
  const [first, ...rest] = conditions;
  const also = rest.length > 0 ? `; also ${rest.map((c) => sentences[c]).join('; ')}` : '';
  return { continue: false, conditions, reason: `stop: ${sentences[first]}${also}.` };
}
