import { describe, expect, it } from 'vitest';
import { winTieLoss, type PairOutcome } from './judge';
import { applyPeiGrid, peiStop } from './pei';
import { gainChart, gainSeries, peiLoopSummary, peiRoundTable, ratioTrajectoryChart, ratioTrajectorySeries, winTieLossChart, type PeiRound } from './report';

const PNG = [137, 80, 78, 71, 13, 10, 26, 10];
const outcomes = (sub: string, w: number, t: number, l: number, s = 0) =>
  ([['win', w], ['tie', t], ['loss', l], ['skip', s]] as [PairOutcome, number][]).flatMap(([o, k]) => Array.from({ length: k }, () => ({ subdomain: sub, outcome: o })));

function round(n: number, ratios: Record<string, number>): PeiRound {
  const judged = winTieLoss([...outcomes('safety', 6, 3, 1), ...outcomes('code', 1, 2, 3, 1)]);
  const ppoTiers = { safety: 'good', code: 'bad' } as const;
  const rmTiers = { safety: 'mid', code: 'good' } as const;
  const grid = applyPeiGrid(ratios, ppoTiers, rmTiers);
  const stop = peiStop({ round: n, maxRounds: 2, ratioMoves: grid.maxMove, gains: { safety: 0.5, code: -1 / 3 }, epsilon: 0.001 });
  return { round: n, kl: 0.2 / n, nextKl: 0.1 / n, judged, rmAlignment: { safety: 0.8, code: 0.7 }, ppoTiers, rmTiers, grid, stop };
}

describe('PEI reports', () => {
  const r1 = round(1, { safety: 0.5, code: 0.5 });
  const r2 = round(2, r1.grid.ratios);

  it('peiRoundTable: one row per subdomain with gain, W/T/L, tiers and ratios', () => {
    const md = peiRoundTable(r1);
    expect(md).toContain('### PEI-RLHF round 1 (KL 0.2 → 0.1)');
    // safety: PPO good / RM mid → up: 0.625 / (0.625 + 0.75) = 0.4545; code: up-up 0.75 / 1.375 = 0.5455.
    expect(md).toContain('| safety | +50.0% | 6/3/1 | 80.0% | good | mid | ↑ up | 0.5000 | 0.4545 |');
    expect(md).toContain('| code | -33.3% | 1/2/3 (1 skipped) | 70.0% | bad | good | ↑↑ up-up | 0.5000 | 0.5455 |');
    expect(md).toContain('Overall: net win rate +18.8% over 16 judged pairs');
    expect(md).toContain('Decision: continue:');
  });

  it('peiLoopSummary: a row per round and the ratio trajectory', () => {
    const md = peiLoopSummary([r1, r2]);
    expect(md).toMatch(/\| 1 \| 0\.2 \| \+18\.8% \| 7\/5\/4 \(1 skipped\) \| 0\.0455 \| 2 \/ 0 \/ 0 \| continue:/);
    expect(md).toMatch(/\| 2 \| 0\.1 \|.*\| stop: round 2 reached maxRounds 2\. \|/);
    expect(md).toContain('| safety | 0.5000 | 0.4545 |');
    expect(md).toContain('Ended after round 2: stop: round 2 reached maxRounds 2.');
    expect(() => peiLoopSummary([])).toThrow(/rounds:/);
  });

  it('chart series and PNGs', () => {
    const traj = ratioTrajectorySeries([r1, r2], { labels: { safety: 'Safety' } });
    expect(traj[0].name).toBe('Safety');
    expect(traj[0].points[0]).toEqual([0, 0.5]);
    expect(traj[0].points[1][1]).toBeCloseTo(0.625 / 1.375, 12);
    const gains = gainSeries([r1, r2]);
    expect(gains.map((s) => s.name)).toEqual(['safety', 'code', 'overall']);
    expect(gains[1].points[0]).toEqual([1, -1 / 3]);
    for (const png of [ratioTrajectoryChart([r1, r2]), gainChart([r1, r2]), winTieLossChart({ ...r1.judged.bySubdomain, empty: winTieLoss(outcomes('empty', 0, 0, 0, 2)).bySubdomain.empty })]) {
      expect([...png.slice(0, 8)]).toEqual(PNG);
    }
    expect(() => winTieLossChart({})).toThrow(/bySubdomain/);
  });
});
