/**
 * `rlhf.improve#round-k` (seed 四, 改进): tier each subdomain's PPO gain (the net win rate against
 * the SFT model) and its RM alignment rate into good / mid / bad, move its data ratio by the PEI
 * grid (`applyPeiGrid` of `@xyp/rlhf`), renormalise, lower the KL (`nextKl`), and say whether another
 * round is worth it (`peiStop`: ratios settled, no subdomain gains, or the round limit).
 */
import { applyPeiGrid, nextKl, peiStop, tierValues, type PeiGridConfigInput, type PeiGridResult, type PeiStopDecision, type TierConfigInput, type TierResult } from '@xyp/rlhf';

export interface ImproveRun {
  round: number;
  maxRounds: number;
  ratios: Readonly<Record<string, number>>;
  kl: number;
  /** Net win rate per subdomain (null: no judged pair). */
  gains: Readonly<Record<string, number | null>>;
  /** UFRM alignment rate per subdomain (reward.evaluate). */
  alignment: Readonly<Record<string, number>>;
  ppoTiers: TierConfigInput;
  rmTiers: TierConfigInput;
  grid?: PeiGridConfigInput;
  klFactor: number;
  klMin: number;
  epsilon: number;
  /** The round's measured KL to the reference and the evaluation's bound: past it, the KL is raised (`nextKl`). */
  measuredKl?: { kl: number; bound: number };
}

export interface ImproveOutput {
  ppo: TierResult;
  rm: TierResult;
  grid: PeiGridResult;
  kl: { before: number; after: number; reason: string };
  decision: PeiStopDecision;
  /** Subdomains without a judged pair or an alignment rate: held at their tier `mid` (named). */
  notes: string[];
}

export function improveRound(run: ImproveRun): ImproveOutput {
  const subs = Object.keys(run.ratios);
  const notes: string[] = [];
  const gains: Record<string, number> = {};
  const alignment: Record<string, number> = {};
  for (const s of subs) {
    const g = run.gains[s];
    if (g === null || g === undefined) notes.push(`${s}: no judged pair this round; its PPO gain counts as 0`);
    gains[s] = g ?? 0;
    const a = run.alignment[s];
    if (a === undefined) throw new Error(`rlhf.improve: alignment: subdomain ${s} has no UFRM alignment rate (reward.evaluate has no held-out pair of it)`);
    alignment[s] = a;
  }
  const ppo = tierValues(gains, run.ppoTiers, 'gains');
  const rm = tierValues(alignment, run.rmTiers, 'alignment');
  const grid = applyPeiGrid(run.ratios, ppo.tiers, rm.tiers, run.grid ?? {});
  const kl = nextKl(run.kl, { factor: run.klFactor, min: run.klMin }, run.measuredKl);
  const decision = peiStop({ round: run.round, maxRounds: run.maxRounds, ratioMoves: grid.maxMove, gains: run.gains, epsilon: run.epsilon });
  return { ppo, rm, grid, kl: { before: run.kl, after: kl.kl, reason: kl.reason }, decision, notes };
}

/** The UFRM alignment rate per subcategory of one variant (default `ufrm`) from reward.evaluate's `alignment.json`. */
export function alignmentRates(json: unknown, variant = 'ufrm'): Record<string, number> {
  const v = (json as { variants?: { name: string; summary: { categories: { category: string; mean: number }[] } }[] }).variants;
  if (!Array.isArray(v) || v.length === 0) throw new Error('alignment.json: no variants (not a reward.evaluate report)');
  const chosen = v.find((x) => x.name === variant) ?? v[0];
  return Object.fromEntries(chosen.summary.categories.map((c) => [c.category, c.mean]));
}
