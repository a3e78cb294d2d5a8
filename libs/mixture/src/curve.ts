import type { LossReportLine } from './schemas';

/** One point of a category's loss curve after lines sharing a step were merged. */
export interface LossPoint {
  step: number;
  loss: number;
  tokens: number;
}

/** What the controller reads off one category's loss curve within a stage. */
export interface CurveSummary {
  /** Distinct steps (points) in the stage. */
  points: number;
  firstStep: number;
  lastStep: number;
  /** Tokens reported for the category (sum of the optional `tokens` fields). */
  tokens: number;
  /** Loss at the start of the stage: EMA run backwards, so it is anchored at the first point. */
  lossStart: number;
  /** Loss now: EMA run forwards, anchored at the last point. */
  lossNow: number;
  /** g = d ln(loss) / d step, least squares over the latest `window` points; null when too few. */
  slope: number | null;
  /** Points the slope was fitted on (0 when it was not). */
  slopePoints: number;
}

/**
 * Merges lines that share a step into one point: token-weighted mean of the losses when
 * every line at that step carries a positive `tokens`, plain mean otherwise. Sorted by step.
 */
export function lossCurve(lines: readonly LossReportLine[]): LossPoint[] {
  const byStep = new Map<number, LossReportLine[]>();
  for (const line of lines) {
    const group = byStep.get(line.step);
    if (group) group.push(line);
    else byStep.set(line.step, [line]);
  }
  return [...byStep.entries()]
    .sort(([a], [b]) => a - b)
    .map(([step, group]) => {
      const tokens = group.reduce((sum, l) => sum + (l.tokens ?? 0), 0);
      const weighted = tokens > 0 && group.every((l) => l.tokens !== undefined && l.tokens > 0);
      const loss = weighted
        ? group.reduce((sum, l) => sum + l.loss * (l.tokens ?? 0), 0) / tokens
        : group.reduce((sum, l) => sum + l.loss, 0) / group.length;
      return { step, loss, tokens };
    });
}

/**
 * Bias-corrected exponential moving average (as in Adam, Kingma & Ba 2015):
 * m_k = β·m_{k−1} + (1−β)·x_k, m_0 = 0, result m_K / (1 − β^K). β = 0 returns the last value;
 * a single value is returned unchanged whatever β is.
 */
export function emaBiasCorrected(values: readonly number[], beta: number): number {
  if (values.length === 0) throw new Error('emaBiasCorrected: no values');
  let m = 0;
  for (const x of values) m = beta * m + (1 - beta) * x;
  const correction = 1 - beta ** values.length;
  return correction > 0 ? m / correction : values[values.length - 1];
}

/**
 * Ordinary least-squares slope of y on x: Σ(x−x̄)(y−ȳ) / Σ(x−x̄)². Returns null when all x
 * are equal.
 */
export function leastSquaresSlope(xs: readonly number[], ys: readonly number[]): number | null {
  const n = xs.length;
  if (n < 2 || ys.length !== n) return null;
  const meanX = xs.reduce((a, b) => a + b, 0) / n;
  const meanY = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i += 1) {
    const dx = xs[i] - meanX;
    sxy += dx * (ys[i] - meanY);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : null;
}

export interface CurveOptions {
  emaBeta: number;
  slopeWindow: number;
  minSlopePoints: number;
  lossFloor: number;
}

/** Summarises one category's lines of the stage (they must all be of that category). */
export function summarizeLossCurve(lines: readonly LossReportLine[], options: CurveOptions): CurveSummary {
  const curve = lossCurve(lines);
  if (curve.length === 0) throw new Error('summarizeLossCurve: no points');
  const losses = curve.map((p) => p.loss);
  const recent = curve.slice(-options.slopeWindow);
  const slope =
    recent.length >= options.minSlopePoints
      ? leastSquaresSlope(
          recent.map((p) => p.step),
          recent.map((p) => Math.log(Math.max(p.loss, options.lossFloor))),
        )
      : null;
  return {
    points: curve.length,
    firstStep: curve[0].step,
    lastStep: curve[curve.length - 1].step,
    tokens: curve.reduce((sum, p) => sum + p.tokens, 0),
    lossStart: emaBiasCorrected([...losses].reverse(), options.emaBeta),
    lossNow: emaBiasCorrected(losses, options.emaBeta),
    slope,
    slopePoints: slope === null ? 0 : recent.length,
  };
}
