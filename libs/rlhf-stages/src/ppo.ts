/**
 * `rlhf.ppo#round-k`: PPO on the filtered finance prompts, drawn by the round's subdomain ratios,
 * with the round's KL coefficient (`LocalEngine.runPpo`: reward = the UFRM score at the last
 * response token − β·KL per token, GAE, clipped policy and value losses).
 *
 * The draws: `rounds × promptsPerRound` prompts, split by the ratios with largest remainder
 * (`largestRemainder` of `@xyp/rlhf`), each subdomain's prompts drawn in a seeded order (another
 * pass when they run out), interleaved by a seeded shuffle; PPO round r takes draws
 * `r·P … r·P + P − 1` in order.
 */
import { createRng, deriveSeed, shuffleInPlace } from '@xyp/random';
import { largestRemainder } from '@xyp/rlhf';
import { lineChart } from '@xyp/charts';
import type { RlhfPrompt } from './prompts';

export function drawPrompts(prompts: readonly RlhfPrompt[], ratios: Readonly<Record<string, number>>, count: number, seed: number): { draws: RlhfPrompt[]; bySubdomain: Record<string, number> } {
  const bySub = new Map<string, RlhfPrompt[]>();
  for (const p of prompts) {
    const list = bySub.get(p.subdomain);
    if (list) list.push(p);
    else bySub.set(p.subdomain, [p]);
  }
  const weighted = new Map<string, number>();
  for (const [sub, r] of Object.entries(ratios)) {
    if (!(r > 0)) continue;
    if (!bySub.has(sub)) throw new Error(`rlhf.ppo: ratios: subdomain ${sub} has a ratio but no prompt`);
    weighted.set(sub, r);
  }
  if (weighted.size === 0) throw new Error('rlhf.ppo: ratios: no subdomain with a positive ratio has prompts');
  const quotas = largestRemainder(weighted, count);
  const draws: RlhfPrompt[] = [];
  const bySubdomain: Record<string, number> = {};
  for (const [sub, n] of [...quotas].sort(([a], [b]) => a.localeCompare(b))) {
    const pool = bySub.get(sub) as RlhfPrompt[];
    const rng = createRng(deriveSeed(seed, 'ppo-draw', sub));
    for (let drawn = 0; drawn < n; ) {
      for (const p of shuffleInPlace([...pool], rng)) {
        if (drawn >= n) break;
        draws.push(p);
        drawn += 1;
      }
    }
    bySubdomain[sub] = n;
  }
  shuffleInPlace(draws, createRng(deriveSeed(seed, 'ppo-draw-order')));
  return { draws, bySubdomain };
}

/** `ratios.json` of a PEI round: `{ratios: {subdomain: share}, kl}`; anything else is an error naming `source`. */
export function readRoundRatios(text: string, source: string): { ratios: Record<string, number>; kl: number } {
  let v: { ratios?: unknown; kl?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    throw new Error(`${source}: not valid JSON`);
  }
  if (!v || typeof v.ratios !== 'object' || v.ratios === null) throw new Error(`${source}: ratios: missing (expected {ratios: {subdomain: share}, kl})`);
  if (typeof v.kl !== 'number' || !(v.kl >= 0)) throw new Error(`${source}: kl: must be a number >= 0`);
  for (const [s, r] of Object.entries(v.ratios)) if (typeof r !== 'number' || !(r >= 0)) throw new Error(`${source}: ratios.${s}: must be a number >= 0`);
  return { ratios: v.ratios as Record<string, number>, kl: v.kl };
}

/** PNG of a PPO stage's rounds: mean reward and KL per PPO round. */
export function ppoLogChart(rounds: readonly Record<string, unknown>[], title: string): Uint8Array {
  const series = (key: string) => ({ name: key, points: rounds.map((r, i) => [i + 1, Number(r[key])] as [number, number]) });
  return lineChart({ title: `${title}: per PPO round`, xLabel: 'PPO round', yLabel: 'value', series: [series('meanReward'), series('meanKl')] });
}
