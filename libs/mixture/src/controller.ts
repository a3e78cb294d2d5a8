import { summarizeLossCurve, type CurveSummary } from './curve';
import { MixtureInputError } from './errors';
import { parseMixtureConfig, parseWeights, validateLossReport } from './parse';
import { cappedSimplexInfeasibility, projectOntoCappedSimplex } from './projection';
import type { LossReportLine, MixtureConfig, MixtureConfigInput, Weights } from './schemas';

/**
 * Dynamic data-mixture controller (XuanYuan3 report, 一 动态数据训练策略): after each
 * continued-pretraining stage, or each SFT epoch, move sampling share from categories the
 * model learns easily to the ones it finds hard.
 *
 * For every category c with loss lines in the stage (T = stage span in steps):
 *
 *   L_now   = forward bias-corrected EMA of the loss curve (β = emaBeta)
 *   L_ref   = referenceLosses[c] (a reference model's loss, DoReMi's ℓ_ref) if given,
 *             otherwise the loss at the stage start (backward EMA, anchored at the first point)
 *   g       = d ln L / d step, least squares over the latest `slopeWindow` points
 *             (0, and flagged, with fewer than `minSlopePoints`)
 *   r       = a · ln(L_now / L_ref) + b · g · T            (a = levelWeight, b = slopeWeight)
 *   s       = clip(r, −c, c) − s̄,   s̄ = Σ_c w_c · clip(r_c) / Σ_c w_c   (c = signalClip)
 *
 * High s = hard: loss still high against its reference and falling slowly. Low s = easy:
 * loss already far below its reference (learned, or in SFT memorised) or falling fast.
 * Both terms are dimensionless (log ratios), so categories with different entropy compare.
 *
 * Update (exponentiated gradient, as in DoReMi — Xie et al., "DoReMi: Optimizing Data
 * Mixtures Speeds Up Language Model Pretraining", NeurIPS 2023, Algorithm 1 — and the
 * EXP3 bandit of online data mixing — Albalak et al., "Efficient Online Data Mixing for
 * Language Model Pre-Training", 2023 — with s in the place of excess loss / reward):
 *
 *   p_c  = w_c · exp(η · s_c) / Σ_j w_j · exp(η · s_j)      (η = learningRate)
 *   p'_c = (1 − γ) · p_c + γ / n                             (γ = smoothing, n categories)
 *   w'   = Π_B(p'),  B = { Σ w = 1,  lo_c ≤ w_c ≤ hi_c }
 *   lo_c = clamp(w_c − maxStep, min_c, max_c),  hi_c = clamp(w_c + maxStep, min_c, max_c)
 *
 * Π_B is the exact Euclidean projection onto the capped simplex (see projection.ts), so
 * min_c ≤ w'_c ≤ max_c holds exactly and Σ w' = 1 up to rounding. Equal signals leave
 * p = w, so the only move is the smoothing towards uniform.
 *
 * A weight that lies outside [min_c, max_c] before the update is moved inside whatever the
 * step limit says (flag `pulled-into-bounds`); when no weights within the step limit can
 * satisfy the bounds, the limit is dropped for the stage (noted).
 *
 * Categories in the weights but absent from the report keep their weight (lo_c = hi_c);
 * categories in the report but not the weights enter with `newCategoryShare` (default
 * 1/n) and the old weights are scaled down to make room.
 */

export type MixtureMode = 'cpt-stage' | 'sft-epoch';
export type CategoryStatus = 'updated' | 'new' | 'missing';
export type CategoryFlag =
  | 'kept-missing'
  | 'new-category'
  | 'single-point'
  | 'few-points-for-slope'
  | 'reference-model'
  | 'signal-clipped'
  | 'at-min-share'
  | 'at-max-share'
  | 'step-limited'
  | 'pulled-into-bounds'
  | 'over-fitting';

/** The audit record of one category's decision. */
export interface CategoryChange {
  category: string;
  status: CategoryStatus;
  flags: CategoryFlag[];
  /** Distinct steps (or epochs) the category has in the stage. */
  points: number;
  /** Sum of the reported `tokens`. */
  tokens: number;
  /** What L_ref is: a reference model's loss, or the stage-start loss. Null when missing. */
  referenceKind: 'reference-model' | 'stage-start' | null;
  lossReference: number | null;
  lossNow: number | null;
  /** g = d ln(loss)/d step over the latest points; null when not estimated. */
  slope: number | null;
  /** g · T: log-loss change the recent trend makes over one stage span. */
  trend: number | null;
  /** Raw signal r before clipping and centring. */
  rawSignal: number | null;
  /** Centred, clipped signal s (positive = harder than average). */
  signal: number | null;
  /** Normalised weight before the update (0 for a new category). */
  oldWeight: number;
  /** Weight the update started from (old weights scaled to make room for new categories). */
  priorWeight: number;
  /** p_c: after the multiplicative-weights step alone. */
  updatedWeight: number;
  /** p'_c: after mixing with uniform; the projection onto the bounds gives newWeight. */
  smoothedWeight: number;
  newWeight: number;
  /** newWeight − oldWeight. */
  delta: number;
  /** One sentence for a person auditing the decision. */
  reason: string;
}

export interface MixtureDecision {
  mode: MixtureMode;
  /** Next sampling weights (CPT stage) or ratios (SFT epoch); sum to 1. */
  weights: Record<string, number>;
  changes: CategoryChange[];
  stage: { fromStep: number; toStep: number; span: number; lines: number };
  /** Stage-wide remarks: normalised input weights, relaxed step limit, ... */
  notes: string[];
  /** The resolved config (defaults filled in). */
  config: MixtureConfig;
}

/** Defaults that differ for SFT, where one point is one epoch's mean loss. */
export const SFT_DEFAULTS: Readonly<Partial<MixtureConfigInput>> = Object.freeze({
  emaBeta: 0,
  slopeWindow: 3,
  minSlopePoints: 2,
});

const clamp = (x: number, lo: number, hi: number): number => (x < lo ? lo : x > hi ? hi : x);

function fmt(x: number, digits = 4): string {
  return x.toFixed(digits);
}

function signed(x: number, digits = 3): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
}

function percent(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
}

interface Prepared {
  category: string;
  status: CategoryStatus;
  oldWeight: number;
  prior: number;
  summary: CurveSummary | null;
}

/**
 * Categories that over-fit in the last epoch: held-out loss above the previous epoch's by more than
 * `tolerance` (relative) while training loss fell over the same two epochs. Epochs are the `step`s of
 * the lines (several lines of one epoch and category are token-weighted, or averaged without tokens).
 */
export function overfittingCategories(trainLines: readonly LossReportLine[], heldOutLines: readonly LossReportLine[], tolerance = 0): Map<string, { heldOut: [number, number]; train: [number, number]; epochs: [number, number] }> {
  const perEpoch = (lines: readonly LossReportLine[]): Map<string, Map<number, number>> => {
    const sums = new Map<string, Map<number, { loss: number; weight: number }>>();
    for (const l of lines) {
      const byEpoch = sums.get(l.category) ?? new Map<number, { loss: number; weight: number }>();
      const w = l.tokens && l.tokens > 0 ? l.tokens : 1;
      const acc = byEpoch.get(l.step) ?? { loss: 0, weight: 0 };
      acc.loss += w * l.loss;
      acc.weight += w;
      byEpoch.set(l.step, acc);
      sums.set(l.category, byEpoch);
    }
    return new Map([...sums].map(([c, m]) => [c, new Map([...m].map(([e, a]) => [e, a.loss / a.weight]))]));
  };
  const train = perEpoch(validateLossReport(trainLines));
  const heldOut = perEpoch(validateLossReport(heldOutLines));
  const found = new Map<string, { heldOut: [number, number]; train: [number, number]; epochs: [number, number] }>();
  for (const [category, byEpoch] of heldOut) {
    const epochs = [...byEpoch.keys()].sort((a, b) => a - b);
    if (epochs.length < 2) continue;
    const [prev, last] = epochs.slice(-2);
    const t = train.get(category);
    const tPrev = t?.get(prev);
    const tLast = t?.get(last);
    if (tPrev === undefined || tLast === undefined) continue;
    const hPrev = byEpoch.get(prev) as number;
    const hLast = byEpoch.get(last) as number;
    if (hLast > hPrev * (1 + tolerance) && tLast < tPrev) found.set(category, { heldOut: [hPrev, hLast], train: [tPrev, tLast], epochs: [prev, last] });
  }
  return found;
}

function decide(mode: MixtureMode, reports: readonly LossReportLine[], current: Weights, configInput: unknown, heldOut?: readonly LossReportLine[]): MixtureDecision {
  const config = parseMixtureConfig(configInput);
  const lines = validateLossReport(reports).filter((l) => config.sinceStep === undefined || l.step >= config.sinceStep);
  const weightsIn = parseWeights(current);
  const unit = mode === 'sft-epoch' ? 'epoch' : 'step';
  if (lines.length === 0) {
    const since = config.sinceStep === undefined ? '' : ` at ${unit} >= ${config.sinceStep}`;
    throw new MixtureInputError(`losses: no loss lines${since}; nothing to judge the stage by`, 'losses');
  }
  const notes: string[] = [];

  const total = Object.values(weightsIn).reduce((a, b) => a + b, 0);
  if (Math.abs(total - 1) > 1e-9) notes.push(`input weights summed to ${total}; normalised to 1`);

  const byCategory = new Map<string, LossReportLine[]>();
  for (const line of lines) {
    const group = byCategory.get(line.category);
    if (group) group.push(line);
    else byCategory.set(line.category, [line]);
  }
  const known = Object.keys(weightsIn);
  const added = [...byCategory.keys()].filter((c) => !(c in weightsIn)).sort();
  const n = known.length + added.length;
  const newShare = config.newCategoryShare ?? 1 / n;
  if (added.length * newShare >= 1) {
    throw new MixtureInputError(
      `config: ${added.length} new categories × newCategoryShare ${newShare} leave no room for the existing ones`,
      'config',
    );
  }
  if (added.length > 0) notes.push(`new categories ${added.join(', ')} start at ${fmt(newShare)} each`);
  const scale = 1 - added.length * newShare;

  const curveOptions = config;
  const prepared: Prepared[] = [
    ...known.map((category): Prepared => {
      const group = byCategory.get(category);
      const oldWeight = weightsIn[category] / total;
      return {
        category,
        status: group ? 'updated' : 'missing',
        oldWeight,
        prior: oldWeight * scale,
        summary: group ? summarizeLossCurve(group, curveOptions) : null,
      };
    }),
    ...added.map(
      (category): Prepared => ({
        category,
        status: 'new',
        oldWeight: 0,
        prior: newShare,
        summary: summarizeLossCurve(byCategory.get(category) ?? [], curveOptions),
      }),
    ),
  ];

  const fromStep = Math.min(...lines.map((l) => l.step));
  const toStep = Math.max(...lines.map((l) => l.step));
  const span = toStep - fromStep;

  // Over-fitting categories (SFT with held-out losses) take the lowest signal: they lose share.
  const overfit = heldOut ? overfittingCategories(lines, heldOut, config.overfitTolerance) : new Map();
  // Signal per reported category.
  const raw = prepared.map((p) => {
    if (!p.summary) return null;
    const reference = config.referenceLosses?.[p.category];
    const lossRef = reference ?? p.summary.lossStart;
    const level = Math.log(Math.max(p.summary.lossNow, config.lossFloor) / Math.max(lossRef, config.lossFloor));
    const trend = p.summary.slope === null || span === 0 ? null : p.summary.slope * span;
    const r = overfit.has(p.category) ? -config.signalClip : config.levelWeight * level + config.slopeWeight * (trend ?? 0);
    return { lossRef, referenceKind: reference === undefined ? ('stage-start' as const) : ('reference-model' as const), trend, r, clipped: clamp(r, -config.signalClip, config.signalClip) };
  });
  let weightSum = 0;
  let weightedSignal = 0;
  let plainSum = 0;
  let reported = 0;
  prepared.forEach((p, i) => {
    const s = raw[i];
    if (!s) return;
    weightSum += p.prior;
    weightedSignal += p.prior * s.clipped;
    plainSum += s.clipped;
    reported += 1;
  });
  const centre = weightSum > 0 ? weightedSignal / weightSum : plainSum / reported;
  const signal = raw.map((s) => (s ? s.clipped - centre : 0));

  // Multiplicative-weights step, then smoothing towards uniform.
  const eta = config.learningRate;
  const maxLog = Math.max(...signal.map((s) => eta * s));
  const unnormalised = prepared.map((p, i) => p.prior * Math.exp(eta * signal[i] - maxLog));
  const z = unnormalised.reduce((a, b) => a + b, 0);
  const smoothed = unnormalised.map((u) => (1 - config.smoothing) * (u / z) + config.smoothing / n);

  // Bounds: the box, the step limit, and frozen missing categories.
  const boxLo = prepared.map((p) => config.bounds?.[p.category]?.min ?? config.minShare);
  const boxHi = prepared.map((p) => config.bounds?.[p.category]?.max ?? config.maxShare);
  prepared.forEach((p, i) => {
    if (boxLo[i] > boxHi[i]) {
      throw new MixtureInputError(`config: category "${p.category}": min share ${boxLo[i]} exceeds max share ${boxHi[i]}`, 'config', undefined, p.category);
    }
  });
  const boxProblem = cappedSimplexInfeasibility(boxLo, boxHi);
  if (boxProblem !== undefined) {
    throw new MixtureInputError(
      `config: share bounds cannot hold for ${n} categories (${boxProblem}); lower minShare or raise maxShare`,
      'config',
    );
  }
  const frozenBound = (i: number): number => clamp(prepared[i].prior, boxLo[i], boxHi[i]);
  const withStep = {
    lo: prepared.map((p, i) => (p.status === 'missing' ? frozenBound(i) : clamp(p.prior - config.maxStep, boxLo[i], boxHi[i]))),
    hi: prepared.map((p, i) => (p.status === 'missing' ? frozenBound(i) : clamp(p.prior + config.maxStep, boxLo[i], boxHi[i]))),
  };
  const frozenOnly = {
    lo: prepared.map((p, i) => (p.status === 'missing' ? frozenBound(i) : boxLo[i])),
    hi: prepared.map((p, i) => (p.status === 'missing' ? frozenBound(i) : boxHi[i])),
  };
  let bounds = { lo: boxLo, hi: boxHi };
  let stepApplied = false;
  let frozenApplied = false;
  if (cappedSimplexInfeasibility(withStep.lo, withStep.hi) === undefined) {
    bounds = withStep;
    stepApplied = true;
    frozenApplied = true;
  } else if (cappedSimplexInfeasibility(frozenOnly.lo, frozenOnly.hi) === undefined) {
    bounds = frozenOnly;
    frozenApplied = true;
    notes.push(`step limit ±${config.maxStep} relaxed this stage: the weights could not reach the share bounds within it`);
  } else {
    notes.push('weights of categories missing from the report could not be kept within the share bounds; they were updated with the rest');
  }
  const next = projectOntoCappedSimplex(smoothed, bounds.lo, bounds.hi);

  const weights: Record<string, number> = {};
  const changes = prepared.map((p, i): CategoryChange => {
    const w = next[i];
    weights[p.category] = w;
    const flags: CategoryFlag[] = [];
    const s = raw[i];
    const summary = p.summary;
    if (p.status === 'missing' && frozenApplied) flags.push('kept-missing');
    if (p.status === 'new') flags.push('new-category');
    if (summary && summary.points === 1) flags.push('single-point');
    else if (summary && summary.slope === null) flags.push('few-points-for-slope');
    if (s && s.referenceKind === 'reference-model') flags.push('reference-model');
    if (s && s.clipped !== s.r) flags.push('signal-clipped');
    if (overfit.has(p.category)) flags.push('over-fitting');
    if (w === boxLo[i]) flags.push('at-min-share');
    if (w === boxHi[i]) flags.push('at-max-share');
    if (p.prior < boxLo[i] || p.prior > boxHi[i]) flags.push('pulled-into-bounds');
    if (stepApplied && p.status !== 'missing' && ((w === bounds.lo[i] && w !== boxLo[i]) || (w === bounds.hi[i] && w !== boxHi[i]))) {
      flags.push('step-limited');
    }
    const change: CategoryChange = {
      category: p.category,
      status: p.status,
      flags,
      points: summary?.points ?? 0,
      tokens: summary?.tokens ?? 0,
      referenceKind: s?.referenceKind ?? null,
      lossReference: s?.lossRef ?? null,
      lossNow: summary?.lossNow ?? null,
      slope: summary?.slope ?? null,
      trend: s?.trend ?? null,
      rawSignal: s?.r ?? null,
      signal: s ? signal[i] : null,
      oldWeight: p.oldWeight,
      priorWeight: p.prior,
      updatedWeight: unnormalised[i] / z,
      smoothedWeight: smoothed[i],
      newWeight: w,
      delta: w - p.oldWeight,
      reason: '',
    };
    const o = overfit.get(p.category);
    change.reason = explain(change, config, unit);
    if (o) {
      change.reason = `over-fitting: held-out loss ${fmt(o.heldOut[0])} → ${fmt(o.heldOut[1])} while training loss ${fmt(o.train[0])} → ${fmt(o.train[1])} (epochs ${o.epochs[0]} → ${o.epochs[1]}), signal set to −${config.signalClip}; ${change.reason}`;
    }
    return change;
  });

  return { mode, weights, changes, stage: { fromStep, toStep, span, lines: lines.length }, notes, config };
}

function explain(c: CategoryChange, config: MixtureConfig, unit: string): string {
  const move = `weight ${fmt(c.oldWeight)} → ${fmt(c.newWeight)}`;
  const limits: string[] = [];
  if (c.flags.includes('at-min-share')) limits.push('held at its minimum share');
  if (c.flags.includes('at-max-share')) limits.push('held at its maximum share');
  if (c.flags.includes('step-limited')) limits.push(`change limited to ±${config.maxStep} per stage`);
  if (c.flags.includes('pulled-into-bounds')) limits.push('its old weight lay outside the share bounds, moved inside them');
  if (c.flags.includes('signal-clipped')) limits.push(`signal clipped at ±${config.signalClip}`);
  const tail = limits.length > 0 ? ` (${limits.join('; ')})` : '';
  if (c.status === 'missing') {
    const kept = c.flags.includes('kept-missing') ? 'kept' : 'updated with the rest';
    return `no loss lines this stage: weight ${kept}, ${move}${tail}`;
  }
  const s = c.signal ?? 0;
  const verdict = s > 0.01 ? 'harder than average' : s < -0.01 ? 'easier than average' : 'about average';
  const ref = c.referenceKind === 'reference-model' ? 'reference-model loss' : `loss at the stage start`;
  const level =
    c.lossNow !== null && c.lossReference !== null
      ? `loss ${fmt(c.lossNow)} vs ${ref} ${fmt(c.lossReference)} (${percent(c.lossNow / c.lossReference - 1)})`
      : 'loss unknown';
  const trend =
    c.trend !== null
      ? `recent trend ${percent(Math.exp(c.trend) - 1)} per stage`
      : c.flags.includes('single-point')
        ? `one ${unit} only, no trend`
        : `too few ${unit}s for a trend (${c.points} < ${config.minSlopePoints})`;
  const entry = c.status === 'new' ? `new category, entered at ${fmt(c.priorWeight)}; ` : '';
  const moved = c.newWeight - c.priorWeight;
  const against = (s > 0.01 && moved <= 1e-12) || (s < -0.01 && moved >= -1e-12);
  const steps = against
    ? `; did not move with its signal: ${fmt(c.priorWeight)} → ${fmt(c.updatedWeight)} by the update (relative to the other categories), → ${fmt(c.smoothedWeight)} by smoothing towards uniform, → ${fmt(c.newWeight)} by the projection onto the share and step bounds`
    : '';
  return `${entry}${verdict} (signal ${signed(s)}): ${level}, ${trend}; ${move}${tail}${steps}`;
}

/**
 * Next sampling weights for a continued-pretraining stage from the per-category loss
 * report of the stage that just ran (steps are optimiser steps). See the module comment
 * for the rule.
 * @throws MixtureInputError on a bad report line (naming it and its category), bad
 *   weights, a bad config, or share bounds that no weights can satisfy.
 */
export function nextMixture(
  reports: readonly LossReportLine[],
  currentWeights: Weights,
  config: MixtureConfigInput = {},
): MixtureDecision {
  return decide('cpt-stage', reports, currentWeights, config);
}

/**
 * Next per-category SFT ratios, re-set once per epoch (XuanYuan3: lower converged or
 * overfitting categories, raise high-loss ones). `epochLosses` holds one line per category
 * per finished epoch with `step` = epoch index (several lines per epoch are averaged).
 * Same rule as {@link nextMixture}, with {@link SFT_DEFAULTS} under `config`: no EMA (each
 * point is already an epoch mean) and a slope from 2–3 epochs. Feed training losses: a
 * category the model memorises shows a loss far below its first epoch and loses share.
 * With `heldOutLosses` (one line per category per epoch on a held-out split, `step` = epoch; the
 * epoch before training may be 0), a category over-fits when its held-out loss rose over the last
 * two epochs while its training loss fell (`overfittingCategories`); its raw signal is set to −c,
 * the lowest, so it loses share (flag `over-fitting`, named in its reason).
 */
export function nextSftRatios(
  epochLosses: readonly LossReportLine[],
  currentRatios: Weights,
  config: MixtureConfigInput = {},
  heldOutLosses?: readonly LossReportLine[],
): MixtureDecision {
  const merged: Record<string, unknown> = { ...SFT_DEFAULTS };
  for (const [key, value] of Object.entries(config)) if (value !== undefined) merged[key] = value;
  return decide('sft-epoch', epochLosses, currentRatios, merged, heldOutLosses);
}
