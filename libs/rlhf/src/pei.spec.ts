import { describe, expect, it } from 'vitest';
import { RlhfInputError } from './errors';
import { PEI_GRID, applyPeiGrid, nextKl, peiStop } from './pei';
import type { Tier } from './tiers';

// Default steps: up 1.25, upUp 1.5, down 0.8, downDown 0.6, minRatio 0.01.
describe('applyPeiGrid: each of the 9 cells', () => {
  // Two subdomains at 0.5 each: `x` in the cell under test, `ref` in PPO good / RM good (hold).
  // after(x) = 0.5·f / (0.5·f + 0.5) = f / (f + 1), after(ref) = 1 / (f + 1).
  const cells: [Tier, Tier, string, number, number][] = [
    ['good', 'good', 'hold', 0.5, 0.5],
    ['good', 'mid', 'up', 0.625, 0.625 / 1.125], // 5/9
    ['good', 'bad', 'hold', 0.5, 0.5],
    ['mid', 'good', 'up', 0.625, 0.625 / 1.125],
    ['mid', 'mid', 'hold', 0.5, 0.5],
    ['mid', 'bad', 'down', 0.4, 0.4 / 0.9], // 4/9
    ['bad', 'good', 'up-up', 0.75, 0.75 / 1.25], // 0.6
    ['bad', 'mid', 'down', 0.4, 0.4 / 0.9],
    ['bad', 'bad', 'down-down', 0.3, 0.3 / 0.8], // 0.375
  ];
  it.each(cells)('PPO %s, RM %s → %s', (ppo, rm, action, afterStep, after) => {
    const r = applyPeiGrid({ x: 0.5, ref: 0.5 }, { x: ppo, ref: 'good' }, { x: rm, ref: 'good' });
    const x = r.records.find((rec) => rec.subdomain === 'x')!;
    expect(x.action).toBe(action);
    expect(x.before).toBe(0.5);
    expect(x.afterStep).toBeCloseTo(afterStep, 12);
    expect(x.after).toBeCloseTo(after, 12);
    expect(r.ratios.ref).toBeCloseTo(1 - after, 12);
    expect(r.maxMove).toBeCloseTo(Math.abs(after - 0.5), 12);
    expect(x.reason).toContain(`PPO ${ppo}, RM ${rm} → ${action}`);
  });

  it('all nine at once: renormalised by the hand sum 9.2/9', () => {
    const subs = ['gg', 'gm', 'gb', 'mg', 'mm', 'mb', 'bg', 'bm', 'bb'];
    const t: Record<string, Tier> = { g: 'good', m: 'mid', b: 'bad' };
    const ratios = Object.fromEntries(subs.map((s) => [s, 1 / 9]));
    const ppo = Object.fromEntries(subs.map((s) => [s, t[s[0]]]));
    const rm = Object.fromEntries(subs.map((s) => [s, t[s[1]]]));
    const r = applyPeiGrid(ratios, ppo, rm);
    // Σ afterStep = (3·1 + 2·1.25 + 1.5 + 2·0.8 + 0.6) / 9 = 9.2 / 9.
    const expected: Record<string, number> = { gg: 1, gm: 1.25, gb: 1, mg: 1.25, mm: 1, mb: 0.8, bg: 1.5, bm: 0.8, bb: 0.6 };
    for (const s of subs) expect(r.ratios[s]).toBeCloseTo(expected[s] / 9.2, 12);
    expect(Object.values(r.ratios).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(PEI_GRID.bad.good).toBe('up-up');
  });
});

describe('applyPeiGrid: floor, normalising, errors', () => {
  it('floors after the step and before renormalising', () => {
    // a: 0.01 · 0.6 = 0.006 → floored to 0.01; b: 0.99 (hold). Sum 1.0 → after = 0.01, 0.99.
    const r = applyPeiGrid({ a: 0.01, b: 0.99 }, { a: 'bad', b: 'good' }, { a: 'bad', b: 'good' }, { minRatio: 0.01 });
    const a = r.records[0];
    expect(a.afterStep).toBeCloseTo(0.006, 12);
    expect(a.floored).toBe(true);
    expect(a.after).toBeCloseTo(0.01 / 1.0, 12);
    // With a 0.05 floor: 0.05 / 1.04.
    const r2 = applyPeiGrid({ a: 0.01, b: 0.99 }, { a: 'bad', b: 'good' }, { a: 'bad', b: 'good' }, { minRatio: 0.05 });
    expect(r2.ratios.a).toBeCloseTo(0.05 / 1.04, 12);
    expect(r2.ratios.b).toBeCloseTo(0.99 / 1.04, 12);
  });

  it('normalises input ratios that do not sum to 1 and says so', () => {
    const r = applyPeiGrid({ a: 2, b: 2 }, { a: 'mid', b: 'mid' }, { a: 'mid', b: 'mid' });
    expect(r.records[0].before).toBe(0.5);
    expect(r.notes[0]).toMatch(/summed to 4/);
  });

  it('names a subdomain missing a tier, and a bad config field', () => {
    expect(() => applyPeiGrid({ a: 0.5, b: 0.5 }, { a: 'good' }, { a: 'good', b: 'good' })).toThrow(/ppoTiers\.b: subdomain b has a ratio but no PPO tier/);
    expect(() => applyPeiGrid({ a: 1 }, { a: 'good' }, {})).toThrow(/rmTiers\.a/);
    expect(() => applyPeiGrid({ a: 1 }, { a: 'good', z: 'bad' }, { a: 'good' })).toThrow(/ppoTiers\.z: subdomain z has a tier but no ratio/);
    expect(() => applyPeiGrid({ a: 1 }, { a: 'great' as Tier }, { a: 'good' })).toThrow(/ppoTiers\.a: tier must be/);
    expect(() => applyPeiGrid({ a: -1 }, { a: 'good' }, { a: 'good' })).toThrow(/ratios\.a/);
    try {
      applyPeiGrid({ a: 1 }, { a: 'good' }, { a: 'good' }, { down: 1.5 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RlhfInputError);
      expect((e as RlhfInputError).field).toBe('config.down');
    }
    expect(() => applyPeiGrid({ a: 1 }, { a: 'good' }, { a: 'good' }, { upUp: 1.1 })).toThrow(/config\.upUp: upUp must be >= up/);
  });
});

describe('nextKl', () => {
  it('multiplies by the factor and floors', () => {
    expect(nextKl(0.2, { factor: 0.5, min: 0.05 }).kl).toBeCloseTo(0.1, 15);
    const f = nextKl(0.08, { factor: 0.5, min: 0.05 });
    expect(f).toMatchObject({ kl: 0.05, floored: true });
    expect(() => nextKl(0.1, { factor: 0, min: 0 })).toThrow(/config\.factor/);
    expect(() => nextKl(NaN, { factor: 0.5, min: 0 })).toThrow(/^kl:/);
  });

  it('raises the coefficient (kl / factor) after a round whose measured KL went past the bound, and lowers it at or under the bound', () => {
    const over = nextKl(0.025, { factor: 0.5, min: 0.01 }, { kl: 20.88, bound: 5 });
    expect(over.kl).toBeCloseTo(0.05, 15);
    expect(over.floored).toBe(false);
    expect(over.reason).toContain('20.88 nats/response, is above the bound 5');
    expect(nextKl(0.025, { factor: 0.5, min: 0.01 }, { kl: 5, bound: 5 }).kl).toBeCloseTo(0.0125, 15);
    expect(nextKl(0.025, { factor: 0.5, min: 0.01 }, { kl: 0.3, bound: 5 }).kl).toBeCloseTo(0.0125, 15);
  });
});

describe('peiStop', () => {
  const base = { round: 1, maxRounds: 3, ratioMoves: 0.05, gains: { a: 0.1, b: -0.2 }, epsilon: 0.01 };
  it('continues when no condition holds', () => {
    const d = peiStop(base);
    expect(d.continue).toBe(true);
    expect(d.conditions).toEqual([]);
    expect(d.reason).toMatch(/1 of 2 subdomains gained \(best 0\.1000 in a\)/);
  });
  it('stops at maxRounds', () => {
    const d = peiStop({ ...base, round: 3 });
    expect(d).toMatchObject({ continue: false, conditions: ['max-rounds'] });
    expect(d.reason).toBe('stop: round 3 reached maxRounds 3.');
  });
  it('stops when no ratio moved by more than ε (= ε stops)', () => {
    expect(peiStop({ ...base, ratioMoves: 0.01 }).conditions).toEqual(['ratios-settled']);
    expect(peiStop({ ...base, ratioMoves: 0.0101 }).continue).toBe(true);
    expect(peiStop({ ...base, ratioMoves: { a: -0.005, b: 0.002 } }).reason).toMatch(/max \|Δratio\| = 0\.0050/);
    expect(peiStop({ ...base, ratioMoves: { a: -0.05 } }).continue).toBe(true);
  });
  it('stops when no subdomain gains (0 and null are not gains)', () => {
    const d = peiStop({ ...base, gains: { a: 0, b: -0.1, c: null } });
    expect(d.conditions).toEqual(['no-gain']);
    expect(d.reason).toMatch(/best gain 0\.0000 in a/);
    expect(peiStop({ ...base, gains: { a: null } }).reason).toMatch(/none of the 1 was judged/);
  });
  it('precedence: max-rounds, then ratios-settled, then no-gain', () => {
    const all = peiStop({ round: 5, maxRounds: 5, ratioMoves: 0, gains: { a: -0.1 }, epsilon: 0.01 });
    expect(all.conditions).toEqual(['max-rounds', 'ratios-settled', 'no-gain']);
    expect(all.reason).toBe('stop: round 5 reached maxRounds 5; also no ratio moved by more than ε = 0.01 (max |Δratio| = 0.0000); no subdomain gained (best gain -0.1000 in a; all 1 ≤ 0 or not judged).');
    const two = peiStop({ round: 1, maxRounds: 5, ratioMoves: 0, gains: { a: -0.1 }, epsilon: 0.01 });
    expect(two.conditions).toEqual(['ratios-settled', 'no-gain']);
    expect(two.reason.startsWith('stop: no ratio moved')).toBe(true);
  });
  it('names bad input fields', () => {
    expect(() => peiStop({ ...base, maxRounds: 0 })).toThrow(/input\.maxRounds/);
    expect(() => peiStop({ ...base, gains: {} })).toThrow(/input\.gains: no subdomain gains/);
  });
});
