import { describe, expect, it } from 'vitest';
import { nextMixture, nextSftRatios, type MixtureDecision } from './controller';
import { createRng, type Rng } from '@xyp/random';
import type { LossReportLine, MixtureConfigInput } from './schemas';

type Curve = (step: number) => number;

function report(curves: Record<string, Curve>, steps: number[]): LossReportLine[] {
  return steps.flatMap((step) => Object.entries(curves).map(([category, f]) => ({ step, category, loss: f(step) })));
}

const STEPS = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000];
const flatHigh: Curve = () => 3;
const slowFall: Curve = (s) => 2.8 * Math.exp(-s / 5000);
const fastFall: Curve = (s) => 2.5 * Math.exp(-s / 300) + 0.4;
const free: MixtureConfigInput = { smoothing: 0, minShare: 0, maxShare: 1, maxStep: 1 };

function sum(weights: Record<string, number>): number {
  return Object.values(weights).reduce((a, b) => a + b, 0);
}

function change(decision: MixtureDecision, category: string) {
  const found = decision.changes.find((c) => c.category === category);
  if (!found) throw new Error(`no change for ${category}`);
  return found;
}

/** A random but plausible stage: each category decays at its own rate from its own level, with noise. */
function randomStage(rng: Rng) {
  const n = 2 + rng.nextInt(9);
  const categories = Array.from({ length: n }, (_, i) => `cat${i}`);
  const minShare = rng.nextFloat() * (0.9 / n);
  const maxShare = Math.min(1, 1 / n + 0.01 + rng.nextFloat() * 0.8);
  const raw = categories.map(() => 0.05 + rng.nextFloat());
  const total = raw.reduce((a, b) => a + b, 0);
  const weights = Object.fromEntries(categories.map((c, i) => [c, raw[i] / total]));
  const stepCount = 1 + rng.nextInt(12);
  const steps = Array.from({ length: stepCount }, (_, i) => i * 50);
  const lines: LossReportLine[] = [];
  for (const category of categories) {
    if (rng.nextFloat() < 0.1) continue; // sometimes missing from the report
    const start = 0.5 + rng.nextFloat() * 3;
    const rate = rng.nextFloat() * 0.004;
    for (const step of steps) {
      lines.push({ step, category, loss: start * Math.exp(-rate * step) * (1 + (rng.nextFloat() - 0.5) * 0.05) });
    }
  }
  if (lines.length === 0) lines.push({ step: 0, category: categories[0], loss: 1 });
  const config: MixtureConfigInput = {
    minShare,
    maxShare,
    learningRate: 0.1 + rng.nextFloat() * 4,
    smoothing: rng.nextFloat() * 0.3,
    maxStep: rng.nextFloat() < 0.5 ? 1 : 0.01 + rng.nextFloat() * 0.3,
  };
  return { categories, weights, lines, config };
}

describe('nextMixture: properties over random stages', () => {
  it('returns weights that sum to 1 and respect the share bounds exactly (1000 seeded cases)', () => {
    const rng = createRng(1);
    for (let k = 0; k < 1000; k += 1) {
      const { weights, lines, config } = randomStage(rng);
      const decision = nextMixture(lines, weights, config);
      expect(Math.abs(sum(decision.weights) - 1)).toBeLessThan(1e-12);
      for (const w of Object.values(decision.weights)) {
        expect(w >= (config.minShare ?? 0) && w <= (config.maxShare ?? 1)).toBe(true);
      }
    }
  });

  it('moves no category by more than maxStep unless it was outside the bounds or the notes say the limit was relaxed', () => {
    const rng = createRng(2);
    for (let k = 0; k < 500; k += 1) {
      const { weights, lines, config } = randomStage(rng);
      const decision = nextMixture(lines, weights, config);
      if (decision.notes.some((n) => n.includes('relaxed'))) continue;
      for (const c of decision.changes.filter((x) => !x.flags.includes('pulled-into-bounds'))) expect(Math.abs(c.newWeight - c.priorWeight)).toBeLessThanOrEqual((config.maxStep ?? 1) + 1e-15);
    }
  });

  it('is deterministic: the same input gives the same decision', () => {
    const rng = createRng(3);
    for (let k = 0; k < 100; k += 1) {
      const { weights, lines, config } = randomStage(rng);
      expect(nextMixture(lines, weights, config)).toEqual(nextMixture(lines, weights, config));
    }
  });

  it('orders the new weights by signal when the old weights were equal (uniform bounds)', () => {
    const rng = createRng(4);
    for (let k = 0; k < 300; k += 1) {
      const { categories, lines, config } = randomStage(rng);
      const equal = Object.fromEntries(categories.map((c) => [c, 1 / categories.length]));
      const decision = nextMixture(lines, equal, { ...config, maxStep: 1 });
      const reported = decision.changes.filter((c) => c.signal !== null);
      for (const a of reported) {
        for (const b of reported) {
          if (a.signal! > b.signal! + 1e-12) expect(a.newWeight).toBeGreaterThanOrEqual(b.newWeight - 1e-15);
        }
      }
    }
  });

  it('without smoothing or bounds, gives the highest-signal category more and the lowest less', () => {
    const rng = createRng(5);
    for (let k = 0; k < 300; k += 1) {
      const { lines, weights } = randomStage(rng);
      const decision = nextMixture(lines, weights, free);
      const reported = decision.changes.filter((c) => c.signal !== null);
      if (reported.length < 2) continue;
      const sorted = [...reported].sort((a, b) => a.signal! - b.signal!);
      const lowest = sorted[0];
      const highest = sorted[sorted.length - 1];
      if (highest.signal! - lowest.signal! < 1e-9) continue;
      expect(highest.newWeight).toBeGreaterThan(highest.oldWeight);
      expect(lowest.newWeight).toBeLessThan(lowest.oldWeight);
    }
  });
});

describe('nextMixture: behaviour', () => {
  it('moves weight from a fast-converging category to a flat high-loss one', () => {
    const decision = nextMixture(report({ social: flatHigh, news: slowFall, encyclopedia: fastFall }, STEPS), {
      social: 1 / 3,
      news: 1 / 3,
      encyclopedia: 1 / 3,
    });
    expect(change(decision, 'social').newWeight).toBeGreaterThan(1 / 3);
    expect(change(decision, 'encyclopedia').newWeight).toBeLessThan(1 / 3);
    expect(change(decision, 'social').signal!).toBeGreaterThan(change(decision, 'news').signal!);
    expect(change(decision, 'news').signal!).toBeGreaterThan(change(decision, 'encyclopedia').signal!);
    expect(change(decision, 'encyclopedia').reason).toMatch(/^easier than average \(signal -/);
    expect(change(decision, 'social').reason).toMatch(/^harder than average \(signal \+/);
  });

  it('leaves the weights unchanged when every category has the same curve and there is no smoothing', () => {
    const weights = { a: 0.5, b: 0.3, c: 0.2 };
    const decision = nextMixture(report({ a: fastFall, b: fastFall, c: fastFall }, STEPS), weights, { smoothing: 0 });
    for (const [category, w] of Object.entries(weights)) expect(decision.weights[category]).toBeCloseTo(w, 15);
    for (const c of decision.changes) expect(c.signal).toBeCloseTo(0, 15);
  });

  it('only moves towards uniform, by the smoothing factor, when every category has the same curve', () => {
    const weights = { a: 0.5, b: 0.3, c: 0.2 };
    const gamma = 0.1;
    const decision = nextMixture(report({ a: slowFall, b: slowFall, c: slowFall }, STEPS), weights, { smoothing: gamma });
    for (const [category, w] of Object.entries(weights)) {
      expect(decision.weights[category]).toBeCloseTo((1 - gamma) * w + gamma / 3, 14);
    }
  });

  it('gains weight for a category whose loss stays far above its reference-model loss', () => {
    const curves = { news: fastFall, law: fastFall };
    const decision = nextMixture(report(curves, STEPS), { news: 0.5, law: 0.5 }, { referenceLosses: { news: 0.4, law: 0.2 } });
    expect(decision.weights.law).toBeGreaterThan(decision.weights.news);
    expect(change(decision, 'law').flags).toContain('reference-model');
    expect(change(decision, 'law').reason).toContain('reference-model loss 0.2000');
  });

  it('keeps the weight of a category missing from the report and flags it', () => {
    const decision = nextMixture(report({ a: flatHigh, b: fastFall }, STEPS), { a: 0.3, b: 0.3, c: 0.4 });
    const c = change(decision, 'c');
    expect(c.status).toBe('missing');
    expect(c.flags).toContain('kept-missing');
    expect(c.newWeight).toBe(0.4);
    expect(c.signal).toBeNull();
    expect(c.reason).toMatch(/^no loss lines this stage: weight kept/);
    expect(decision.weights.a).toBeGreaterThan(0.3);
  });

  it('lets a new category enter at 1/n and scales the others to make room', () => {
    const decision = nextMixture(report({ a: slowFall, b: slowFall, fresh: slowFall }, STEPS), { a: 0.5, b: 0.5 }, { smoothing: 0 });
    const fresh = change(decision, 'fresh');
    expect(fresh.status).toBe('new');
    expect(fresh.flags).toContain('new-category');
    expect(fresh.oldWeight).toBe(0);
    expect(fresh.priorWeight).toBeCloseTo(1 / 3, 15);
    expect(decision.weights.fresh).toBeCloseTo(1 / 3, 12);
    expect(decision.weights.a).toBeCloseTo(1 / 3, 12);
    expect(decision.notes.join(' ')).toContain('new categories fresh');
  });

  it('uses newCategoryShare for an entering category when given', () => {
    const decision = nextMixture(report({ a: slowFall, fresh: slowFall }, STEPS), { a: 1 }, { smoothing: 0, newCategoryShare: 0.1, maxShare: 1 });
    expect(decision.weights.fresh).toBeCloseTo(0.1, 12);
  });

  it('flags a category with too few points for a slope and judges it by its level only', () => {
    const lines = [...report({ a: fastFall }, STEPS), { step: 0, category: 'b', loss: 3 }, { step: 1000, category: 'b', loss: 2.9 }];
    const decision = nextMixture(lines, { a: 0.5, b: 0.5 });
    const b = change(decision, 'b');
    expect(b.flags).toContain('few-points-for-slope');
    expect(b.slope).toBeNull();
    expect(b.trend).toBeNull();
    expect(b.reason).toContain('too few steps for a trend (2 < 3)');
  });

  it('flags a category with a single point, whose level term is then 0', () => {
    const lines = [...report({ a: fastFall }, STEPS), { step: 500, category: 'b', loss: 2 }];
    const b = change(nextMixture(lines, { a: 0.5, b: 0.5 }), 'b');
    expect(b.flags).toContain('single-point');
    expect(b.rawSignal).toBe(0);
  });

  it('holds shares at minShare and maxShare and flags them', () => {
    const curves = { hard: flatHigh, easy1: fastFall, easy2: fastFall };
    const decision = nextMixture(report(curves, STEPS), { hard: 0.34, easy1: 0.33, easy2: 0.33 }, {
      learningRate: 20,
      minShare: 0.1,
      maxShare: 0.5,
      maxStep: 1,
    });
    expect(decision.weights.hard).toBe(0.5);
    expect(change(decision, 'hard').flags).toContain('at-max-share');
    expect(decision.weights.easy1).toBeCloseTo(0.25, 12);
  });

  it('limits each category to maxStep per stage and flags it', () => {
    const decision = nextMixture(report({ hard: flatHigh, easy: fastFall }, STEPS), { hard: 0.5, easy: 0.5 }, { learningRate: 20, maxStep: 0.05 });
    expect(decision.weights.hard).toBeCloseTo(0.55, 15);
    expect(decision.weights.easy).toBeCloseTo(0.45, 15);
    expect(change(decision, 'hard').flags).toContain('step-limited');
    expect(change(decision, 'hard').reason).toContain('change limited to ±0.05');
  });

  it('relaxes the step limit, with a note, when old weights lie outside the share bounds', () => {
    const decision = nextMixture(report({ a: slowFall, b: slowFall, c: slowFall }, STEPS), { a: 0.9, b: 0.05, c: 0.05 }, {
      maxShare: 0.5,
      maxStep: 0.1,
    });
    expect(decision.weights.a).toBe(0.5);
    expect(decision.notes.join(' ')).toMatch(/step limit ±0.1 relaxed/);
  });

  it('applies per-category bound overrides', () => {
    const decision = nextMixture(report({ hard: flatHigh, easy: fastFall }, STEPS), { hard: 0.5, easy: 0.5 }, {
      learningRate: 20,
      maxStep: 1,
      bounds: { easy: { min: 0.4 } },
    });
    expect(decision.weights.easy).toBe(0.4);
    expect(decision.weights.hard).toBeCloseTo(0.6, 15);
  });

  it('clips extreme signals and says so', () => {
    const decision = nextMixture(report({ hard: flatHigh, easy: (s) => 3 * Math.exp(-s / 50) }, STEPS), { hard: 0.5, easy: 0.5 }, { signalClip: 0.5 });
    expect(change(decision, 'easy').flags).toContain('signal-clipped');
  });

  it('judges only lines at or after sinceStep', () => {
    // "a" fell fast before step 500 and is flat after; "b" is the reverse.
    const a: Curve = (s) => (s < 500 ? 3 - s / 250 : 1);
    const b: Curve = (s) => (s < 500 ? 3 : 3 - (s - 500) / 250);
    const whole = nextMixture(report({ a, b }, STEPS), { a: 0.5, b: 0.5 }, free);
    const late = nextMixture(report({ a, b }, STEPS), { a: 0.5, b: 0.5 }, { ...free, sinceStep: 500 });
    expect(late.stage.fromStep).toBe(500);
    expect(late.weights.a).toBeGreaterThan(late.weights.b);
    expect(whole.stage.fromStep).toBe(0);
  });

  it('normalises weights that do not sum to 1 and notes it', () => {
    const decision = nextMixture(report({ a: slowFall, b: slowFall }, STEPS), { a: 2, b: 2 }, { smoothing: 0 });
    expect(decision.weights.a).toBeCloseTo(0.5, 15);
    expect(decision.notes[0]).toMatch(/summed to 4; normalised/);
  });
});

describe('nextMixture: bad input', () => {
  it('rejects a NaN loss naming the entry and category', () => {
    const lines = [...report({ a: slowFall }, STEPS), { step: 5, category: 'b', loss: Number.NaN }];
    expect(() => nextMixture(lines, { a: 0.5, b: 0.5 })).toThrow(/losses:entry 12: category "b": loss must be a finite number >= 0, got NaN/);
  });

  it('rejects a negative loss naming the category', () => {
    expect(() => nextMixture([{ step: 0, category: 'news', loss: -1 }], { news: 1 }, { maxShare: 1 })).toThrow(/category "news": loss must be a finite number >= 0, got -1/);
  });

  it('refuses share bounds that no weights can satisfy', () => {
    expect(() => nextMixture(report({ a: slowFall, b: slowFall }, STEPS), { a: 0.5, b: 0.5 }, { maxShare: 0.4 })).toThrow(
      /share bounds cannot hold for 2 categories \(upper bounds sum to 0.8 < 1\)/,
    );
  });

  it('refuses an empty report and an unknown config key', () => {
    expect(() => nextMixture([], { a: 1 })).toThrow(/no loss lines/);
    expect(() => nextMixture(report({ a: slowFall, b: slowFall }, STEPS), { a: 0.5, b: 0.5 }, { eta: 1 } as MixtureConfigInput)).toThrow(/eta/);
  });
});

describe('nextSftRatios', () => {
  it('lowers a category that converged over the epochs and raises one whose loss stays high', () => {
    const epochs = [0, 1, 2, 3];
    const converged = [1.6, 0.5, 0.25, 0.24];
    const stuck = [2.2, 2.1, 2.05, 2.0];
    const steady = [1.8, 1.5, 1.3, 1.15];
    const lines = epochs.flatMap((e) => [
      { step: e, category: 'finance-qa', loss: converged[e] },
      { step: e, category: 'compliance', loss: stuck[e] },
      { step: e, category: 'general', loss: steady[e] },
    ]);
    const decision = nextSftRatios(lines, { 'finance-qa': 0.4, compliance: 0.3, general: 0.3 });
    expect(decision.mode).toBe('sft-epoch');
    expect(decision.weights['finance-qa']).toBeLessThan(0.4);
    expect(decision.weights.compliance).toBeGreaterThan(0.3);
    expect(change(decision, 'compliance').lossNow).toBe(2.0);
    expect(change(decision, 'compliance').lossReference).toBe(2.2);
    expect(Math.abs(sum(decision.weights) - 1)).toBeLessThan(1e-12);
  });

  it('estimates a slope from two epochs and lets config override the SFT defaults', () => {
    const lines = [
      { step: 0, category: 'a', loss: 2 },
      { step: 1, category: 'a', loss: 1 },
      { step: 0, category: 'b', loss: 2 },
      { step: 1, category: 'b', loss: 1.9 },
    ];
    expect(change(nextSftRatios(lines, { a: 0.5, b: 0.5 }), 'a').slope).toBeCloseTo(Math.log(0.5), 12);
    expect(change(nextSftRatios(lines, { a: 0.5, b: 0.5 }, { minSlopePoints: 3 }), 'a').slope).toBeNull();
    expect(nextSftRatios(lines, { a: 0.5, b: 0.5 }, { emaBeta: undefined }).config.emaBeta).toBe(0);
  });

  describe('over-fitting (held-out loss rising while training loss falls)', () => {
    // a learns slowly on its training set (2.0 → 1.9) but its held-out loss rises (1.9 → 2.0); b learns fast.
    const train = [
      { step: 1, category: 'a', loss: 2.0 },
      { step: 2, category: 'a', loss: 1.9 },
      { step: 1, category: 'b', loss: 2.0 },
      { step: 2, category: 'b', loss: 1.5 },
    ];
    const heldOut = [
      { step: 0, category: 'a', loss: 2.2 },
      { step: 1, category: 'a', loss: 1.9 },
      { step: 2, category: 'a', loss: 2.0 },
      { step: 0, category: 'b', loss: 2.2 },
      { step: 1, category: 'b', loss: 1.95 },
      { step: 2, category: 'b', loss: 1.7 },
    ];

    it('without held-out losses the slow category gains share', () => {
      // r_a = ln(1.9/2) + ln(1.9/2)·1 = −0.10259, r_b = 2·ln(0.75) = −0.57536: a is the harder one.
      const d = nextSftRatios(train, { a: 0.5, b: 0.5 });
      expect(change(d, 'a').rawSignal).toBeCloseTo(2 * Math.log(0.95), 10);
      expect(d.weights.a).toBeGreaterThan(0.5);
    });

    it('with them, the over-fitting category takes signal −c and loses share, and says why', () => {
      const d = nextSftRatios(train, { a: 0.5, b: 0.5 }, {}, heldOut);
      const a = change(d, 'a');
      expect(a.rawSignal).toBe(-2);
      // centre = 0.5·(−2) + 0.5·2·ln(0.75) = −1.28768; s_a = −2 − centre.
      expect(a.signal).toBeCloseTo(-2 - (0.5 * -2 + 0.5 * 2 * Math.log(0.75)), 10);
      expect(a.flags).toContain('over-fitting');
      expect(a.reason).toMatch(/^over-fitting: held-out loss 1\.9000 → 2\.0000 while training loss 2\.0000 → 1\.9000/);
      // p_a = 1/(1 + e^{2·0.71232}) = 0.19379 → smoothed 0.20910, below the step limit: 0.5 − 0.1.
      expect(d.weights.a).toBeCloseTo(0.4, 12);
      expect(change(d, 'b').flags).not.toContain('over-fitting');
    });

    it('is not over-fitting when training loss rose too, or within the tolerance', () => {
      const rising = train.map((l) => (l.category === 'a' && l.step === 2 ? { ...l, loss: 2.1 } : l));
      expect(change(nextSftRatios(rising, { a: 0.5, b: 0.5 }, {}, heldOut), 'a').flags).not.toContain('over-fitting');
      // 2.0 / 1.9 − 1 = 5.3% rise: a 6% tolerance accepts it, 5% does not.
      expect(change(nextSftRatios(train, { a: 0.5, b: 0.5 }, { overfitTolerance: 0.06 }, heldOut), 'a').flags).not.toContain('over-fitting');
      expect(change(nextSftRatios(train, { a: 0.5, b: 0.5 }, { overfitTolerance: 0.05 }, heldOut), 'a').flags).toContain('over-fitting');
    });
  });
});

describe('nextMixture: audit trail', () => {
  it('records each stage of the update and explains a move against the signal', () => {
    // "news" is harder than average but already above uniform: smoothing and a harder category take share from it.
    const decision = nextMixture(report({ news: slowFall, social: flatHigh, wiki: fastFall }, STEPS), { news: 0.5, social: 0.25, wiki: 0.25 }, { smoothing: 0.3, maxStep: 1 });
    const news = change(decision, 'news');
    expect(news.signal!).toBeGreaterThan(0);
    expect(news.newWeight).toBeLessThan(news.oldWeight);
    expect(news.smoothedWeight).toBeCloseTo(0.7 * news.updatedWeight + 0.3 / 3, 15);
    expect(news.reason).toContain('did not move with its signal');
    expect(news.reason).toContain('by smoothing towards uniform');
  });
});

/**
 * The update rule of the README, computed here with plain numbers step by step (EMA with β = 0,
 * the least-squares log-loss slope over the last three points, the signal, its weighted centring,
 * the exponentiated-gradient step, the smoothing and the projection), against `nextMixture`.
 */
describe('nextMixture: the update rule by hand', () => {
  const steps = [0, 10, 20, 40];
  const losses: Record<string, number[]> = { a: [2.0, 1.8, 1.7, 1.65], b: [3.0, 2.95, 2.9, 2.88], c: [1.5, 1.2, 1.0, 0.8] };
  const lines: LossReportLine[] = steps.flatMap((step, i) => Object.entries(losses).map(([category, l]) => ({ step, category, loss: l[i] })));
  const weights = { a: 0.5, b: 0.3, c: 0.2 };
  const base: MixtureConfigInput = { emaBeta: 0, slopeWindow: 3, minSlopePoints: 2, learningRate: 0.5, smoothing: 0.1, levelWeight: 1, slopeWeight: 0.5, maxStep: 1, minShare: 0.05 };

  /** Bias-corrected EMA of the README: m_k = β·m_{k−1} + (1 − β)·x_k from m_0 = 0, then m_K / (1 − β^K). */
  function ema(xs: number[], beta: number): number {
    let m = 0;
    for (const x of xs) m = beta * m + (1 - beta) * x;
    return beta === 0 ? xs[xs.length - 1] : m / (1 - beta ** xs.length);
  }

  /** The README's signals s_c and smoothed weights p'_c (before the projection) for these lines. */
  function byHand(signalClip: number, emaBeta = 0): { signal: Record<string, number>; smoothed: Record<string, number> } {
    const span = 40;
    const clipped: Record<string, number> = {};
    for (const [category, l] of Object.entries(losses)) {
      // L_now = forward EMA, L_ref = backward EMA (stage start); g = OLS slope of ln L on the last 3 steps.
      const level = Math.log(ema(l, emaBeta) / ema([...l].reverse(), emaBeta));
      const xs = [10, 20, 40];
      const ys = [Math.log(l[1]), Math.log(l[2]), Math.log(l[3])];
      const mx = (xs[0] + xs[1] + xs[2]) / 3;
      const my = (ys[0] + ys[1] + ys[2]) / 3;
      const slope = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
      const r = 1 * level + 0.5 * slope * span;
      clipped[category] = Math.max(-signalClip, Math.min(signalClip, r));
    }
    const centre = 0.5 * clipped.a + 0.3 * clipped.b + 0.2 * clipped.c;
    const signal = { a: clipped.a - centre, b: clipped.b - centre, c: clipped.c - centre };
    const u = { a: 0.5 * Math.exp(0.5 * signal.a), b: 0.3 * Math.exp(0.5 * signal.b), c: 0.2 * Math.exp(0.5 * signal.c) };
    const z = u.a + u.b + u.c;
    return { signal, smoothed: { a: 0.9 * (u.a / z) + 0.1 / 3, b: 0.9 * (u.b / z) + 0.1 / 3, c: 0.9 * (u.c / z) + 0.1 / 3 } };
  }
  const smoothedByHand = (signalClip: number): Record<string, number> => byHand(signalClip).smoothed;

  it('gives p′ = (1 − γ)·w·exp(η·s)/Σ + γ/n when no bound binds', () => {
    const { signal, smoothed: expected } = byHand(2);
    const decision = nextMixture(lines, weights, { ...base, maxShare: 0.9, signalClip: 2 });
    for (const c of ['a', 'b', 'c']) expect(decision.weights[c], c).toBeCloseTo(expected[c], 12);
    // s = r − Σ w·r / Σ w (the weighted centring, which the exponentiated step itself ignores).
    for (const c of ['a', 'b', 'c']) expect(change(decision, c).signal, c).toBeCloseTo(signal[c], 12);
    // The hard category (b: loss still high, barely falling) gains, the easy one (c: falling fast) loses.
    expect(decision.weights.b).toBeGreaterThan(0.3);
    expect(decision.weights.c).toBeLessThan(0.2);
  });

  it('clips the raw signal at ±c before centring', () => {
    const expected = smoothedByHand(0.3);
    const decision = nextMixture(lines, weights, { ...base, maxShare: 0.9, signalClip: 0.3 });
    for (const c of ['a', 'b', 'c']) expect(decision.weights[c], c).toBeCloseTo(expected[c], 12);
    expect(change(decision, 'c').flags).toContain('signal-clipped');
  });

  it('projects onto the share bounds: a capped category sits at maxShare and the others shift by one τ', () => {
    const p = smoothedByHand(2);
    expect(p.a).toBeGreaterThan(0.45);
    const decision = nextMixture(lines, weights, { ...base, maxShare: 0.45, signalClip: 2 });
    // w_i = clamp(p′_i − τ, lo, hi) with Σ w = 1: a at 0.45, b and c shifted by τ = (p′_b + p′_c − 0.55)/2.
    const tau = (p.b + p.c - 0.55) / 2;
    expect(decision.weights.a).toBe(0.45);
    expect(decision.weights.b).toBeCloseTo(p.b - tau, 12);
    expect(decision.weights.c).toBeCloseTo(p.c - tau, 12);
  });

  it('reads the level from bias-corrected EMAs of the curve, forwards for L_now and backwards for L_ref', () => {
    const { signal, smoothed } = byHand(2, 0.5);
    const decision = nextMixture(lines, weights, { ...base, emaBeta: 0.5, maxShare: 0.9, signalClip: 2 });
    for (const c of ['a', 'b', 'c']) {
      expect(change(decision, c).lossNow, c).toBeCloseTo(ema(losses[c], 0.5), 12);
      expect(change(decision, c).lossReference, c).toBeCloseTo(ema([...losses[c]].reverse(), 0.5), 12);
      expect(change(decision, c).signal, c).toBeCloseTo(signal[c], 12);
      expect(decision.weights[c], c).toBeCloseTo(smoothed[c], 12);
    }
  });
});
