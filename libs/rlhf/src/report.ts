import { lineChart, stackedBarChart, type Rgb } from '@xyp/charts';
import { RlhfInputError } from './errors';
import type { WinTieLoss, WinTieLossSummary } from './judge';
import type { PeiGridResult, PeiStopDecision } from './pei';
import type { Tier } from './tiers';

/**
 * Reports of the PEI-RLHF loop: a Markdown table per round, a Markdown summary of the loop, and
 * PNG charts — good/same/bad stacked bars per subdomain (the seed's figures 4 and 5), the ratio
 * trajectories and the gains over the rounds. Chart text is ASCII: pass `labels` (e.g. the
 * `Subcategory.label`s of `@xyp/contracts`) for subdomain ids that are not.
 */

/** Everything one evaluate-improve round produced. */
export interface PeiRound {
  /** 1 = the first evaluate-improve round (after PPO pre-training). */
  round: number;
  /** KL coefficient of this round's PPO run. */
  kl: number;
  /** KL coefficient chosen for the next round, when there is one. */
  nextKl?: number;
  /** Pairwise judging of this round's policy against the previous model (per subdomain). */
  judged: WinTieLossSummary;
  /** RM alignment rate per subdomain on the held-out set. */
  rmAlignment: Readonly<Record<string, number>>;
  ppoTiers: Readonly<Record<string, Tier>>;
  rmTiers: Readonly<Record<string, Tier>>;
  grid: PeiGridResult;
  stop?: PeiStopDecision;
}

export interface ReportOptions {
  /** Display name per subdomain id (default: the id). */
  labels?: Readonly<Record<string, string>>;
  title?: string;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)}%`);
const signedPct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`);
const r4 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(4));
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const wtl = (t: WinTieLoss | undefined) => (t ? `${t.win}/${t.tie}/${t.loss}${t.skip > 0 ? ` (${t.skip} skipped)` : ''}` : '—');
const ARROW: Record<string, string> = { 'up-up': '↑↑', up: '↑', hold: '—', down: '↓', 'down-down': '↓↓' };

function labelOf(sub: string, options?: ReportOptions): string {
  return options?.labels?.[sub] ?? sub;
}

function checkRounds(rounds: readonly PeiRound[], fn: string): void {
  if (!Array.isArray(rounds) || rounds.length === 0) throw new RlhfInputError(`rounds: ${fn} needs at least one round`, 'rounds');
}

/** One round as Markdown: a row per subdomain (the grid's order), then the overall line and the decision. */
export function peiRoundTable(round: PeiRound, options?: ReportOptions): string {
  const klText = round.nextKl === undefined ? `KL ${round.kl}` : `KL ${round.kl} → ${round.nextKl}`;
  const lines = [
    `### ${options?.title ?? `PEI-RLHF round ${round.round}`} (${klText})`,
    '',
    '| subdomain | gain (net win) | W/T/L | RM alignment | PPO tier | RM tier | action | ratio before | ratio after |',
    '|---|---:|---:|---:|---|---|:---:|---:|---:|',
  ];
  for (const rec of round.grid.records) {
    const t = round.judged.bySubdomain[rec.subdomain];
    lines.push(
      `| ${cell(labelOf(rec.subdomain, options))} | ${signedPct(t?.netWinRate)} | ${wtl(t)} | ${pct(round.rmAlignment[rec.subdomain])} | ${rec.ppoTier} | ${rec.rmTier} | ${ARROW[rec.action]} ${rec.action} | ${r4(rec.before)} | ${r4(rec.after)} |`,
    );
  }
  const o = round.judged.overall;
  lines.push('', `Overall: net win rate ${signedPct(o.netWinRate)} over ${o.n} judged pairs (W/T/L ${wtl(o)}); max |Δratio| ${r4(round.grid.maxMove)}.`);
  for (const note of round.grid.notes) lines.push(`Note: ${note}.`);
  if (round.stop) lines.push(`Decision: ${round.stop.reason}`);
  return `${lines.join('\n')}\n`;
}

/** The loop as Markdown: one row per round, then each subdomain's ratio after every round. */
export function peiLoopSummary(rounds: readonly PeiRound[], options?: ReportOptions): string {
  checkRounds(rounds, 'peiLoopSummary');
  const lines = [
    `## ${options?.title ?? 'PEI-RLHF loop'}`,
    '',
    '| round | KL | net win (overall) | W/T/L | max \\|Δratio\\| | ↑ / — / ↓ | decision |',
    '|---:|---:|---:|---:|---:|:---:|---|',
  ];
  for (const r of rounds) {
    const ups = r.grid.records.filter((x) => x.action === 'up' || x.action === 'up-up').length;
    const downs = r.grid.records.filter((x) => x.action === 'down' || x.action === 'down-down').length;
    const holds = r.grid.records.length - ups - downs;
    lines.push(`| ${r.round} | ${r.kl} | ${signedPct(r.judged.overall.netWinRate)} | ${wtl(r.judged.overall)} | ${r4(r.grid.maxMove)} | ${ups} / ${holds} / ${downs} | ${cell(r.stop?.reason ?? '—')} |`);
  }
  const subs = subdomainsOf(rounds);
  lines.push('', `| subdomain | start | ${rounds.map((r) => `after ${r.round}`).join(' | ')} |`, `|---|---:|${rounds.map(() => '---:').join('|')}|`);
  for (const sub of subs) {
    const start = rounds[0].grid.records.find((x) => x.subdomain === sub)?.before;
    lines.push(`| ${cell(labelOf(sub, options))} | ${r4(start)} | ${rounds.map((r) => r4(r.grid.ratios[sub])).join(' | ')} |`);
  }
  const last = rounds[rounds.length - 1];
  lines.push('', last.stop ? `Ended after round ${last.round}: ${last.stop.reason}` : `Last round: ${last.round} (no stop decision recorded).`);
  return `${lines.join('\n')}\n`;
}

function subdomainsOf(rounds: readonly PeiRound[]): string[] {
  const seen = new Set<string>();
  for (const r of rounds) for (const rec of r.grid.records) seen.add(rec.subdomain);
  return [...seen];
}

/** The colours of the seed's figures 4–5: good blue, same orange, bad grey. */
export const WIN_TIE_LOSS_COLORS: { good: Rgb; same: Rgb; bad: Rgb } = { good: [91, 155, 213], same: [237, 125, 49], bad: [165, 165, 165] };

/**
 * good / same / bad (win / tie / loss shares of the judged pairs, skips left out) as 100%-stacked
 * horizontal bars, one per subdomain, sorted by win share (highest on top) like the seed's
 * figures; each label carries n. A subdomain with n = 0 gets an empty bar.
 */
export function winTieLossChart(bySubdomain: Readonly<Record<string, WinTieLoss>>, options?: ReportOptions & { width?: number }): Uint8Array {
  const subs = Object.keys(bySubdomain);
  if (subs.length === 0) throw new RlhfInputError('bySubdomain: no subdomains to chart', 'bySubdomain');
  const share = (t: WinTieLoss) => (t.n === 0 ? -1 : t.win / t.n);
  const order = [...subs].sort((a, b) => share(bySubdomain[b]) - share(bySubdomain[a]) || (a < b ? -1 : 1));
  return stackedBarChart({
    title: options?.title ?? 'policy vs previous model',
    categories: order.map((s) => `${labelOf(s, options)} (n=${bySubdomain[s].n})`),
    segments: [
      { name: 'good', values: order.map((s) => bySubdomain[s].win), color: WIN_TIE_LOSS_COLORS.good },
      { name: 'same', values: order.map((s) => bySubdomain[s].tie), color: WIN_TIE_LOSS_COLORS.same },
      { name: 'bad', values: order.map((s) => bySubdomain[s].loss), color: WIN_TIE_LOSS_COLORS.bad },
    ],
    normalize: true,
    decimals: 1,
    width: options?.width ?? 900,
  });
}

/** The line-chart series of the ratio trajectories: x = round (0 = the start), y = ratio. */
export function ratioTrajectorySeries(rounds: readonly PeiRound[], options?: ReportOptions): { name: string; points: [number, number][] }[] {
  checkRounds(rounds, 'ratioTrajectoryChart');
  return subdomainsOf(rounds).map((sub) => {
    const first = rounds[0].grid.records.find((x) => x.subdomain === sub);
    const points: [number, number][] = [[rounds[0].round - 1, first ? first.before : NaN]];
    for (const r of rounds) points.push([r.round, r.grid.ratios[sub] ?? NaN]);
    return { name: labelOf(sub, options), points };
  });
}

/** The line-chart series of the gains: x = round, y = net win rate (a null gain breaks the line), plus `overall`. */
export function gainSeries(rounds: readonly PeiRound[], options?: ReportOptions): { name: string; points: [number, number][] }[] {
  checkRounds(rounds, 'gainChart');
  const perSub = subdomainsOf(rounds).map((sub) => ({
    name: labelOf(sub, options),
    points: rounds.map((r): [number, number] => [r.round, r.judged.bySubdomain[sub]?.netWinRate ?? NaN]),
  }));
  return [...perSub, { name: 'overall', points: rounds.map((r): [number, number] => [r.round, r.judged.overall.netWinRate ?? NaN]) }];
}

/** Each subdomain's data ratio over the rounds (PNG). */
export function ratioTrajectoryChart(rounds: readonly PeiRound[], options?: ReportOptions): Uint8Array {
  return lineChart({ title: options?.title ?? 'PEI data ratios', xLabel: 'round', yLabel: 'ratio', series: ratioTrajectorySeries(rounds, options), yMin: 0, width: 800, height: 480 });
}

/** Each subdomain's gain (net win rate against the previous model) over the rounds (PNG). */
export function gainChart(rounds: readonly PeiRound[], options?: ReportOptions): Uint8Array {
  return lineChart({ title: options?.title ?? 'PEI gains (net win rate)', xLabel: 'round', yLabel: 'net win rate', series: gainSeries(rounds, options), width: 800, height: 480 });
}
