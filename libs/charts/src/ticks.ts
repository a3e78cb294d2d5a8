/**
 * "Nice" axis ticks: steps of 1, 2 or 5 × 10^k (Heckbert, "Nice numbers for graph labels",
 * Graphics Gems, 1990), and tick labels with just the decimals the step needs.
 */

export interface Ticks {
  /** The axis range: the data range widened to whole steps, or the range asked for. */
  min: number;
  max: number;
  step: number;
  /** Tick values from `min` to `max`, multiples of `step`. */
  values: number[];
  /** Decimals that show every tick exactly (0 for a step of 1 or more). */
  decimals: number;
}

/** The nice number near `x` > 0: rounded to the nearest of 1, 2, 5, 10 × 10^k, or the next one up. */
export function niceNumber(x: number, round: boolean): number {
  const exponent = Math.floor(Math.log10(x));
  const fraction = x / 10 ** exponent;
  let nice: number;
  if (round) nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  else nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * 10 ** exponent;
}

/**
 * About `target` nice ticks covering [lo, hi]. With `fixed`, the axis range is exactly [lo, hi]
 * and the ticks are the step's multiples inside it; otherwise the range widens to whole steps.
 * A degenerate range (lo = hi) widens to lo ± 1 (or ± |lo|/10); non-finite bounds give [0, 1].
 */
export function niceTicks(lo: number, hi: number, target = 5, fixed = false): Ticks {
  let a = Number.isFinite(lo) ? lo : 0;
  let b = Number.isFinite(hi) ? hi : 1;
  if (a > b) [a, b] = [b, a];
  if (a === b) {
    const pad = a === 0 ? 1 : Math.abs(a) / 10;
    a -= pad;
    b += pad;
  }
  const step = niceNumber((b - a) / Math.max(1, target - 1), true);
  const decimals = decimalsOf(step);
  const min = fixed ? a : Math.floor(a / step + 1e-9) * step;
  const max = fixed ? b : Math.ceil(b / step - 1e-9) * step;
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const values: number[] = [];
  for (let i = first; i <= last; i += 1) values.push(Number((i * step).toFixed(Math.min(20, decimals + 2))));
  return { min: fixed ? min : Number(min.toFixed(Math.min(20, decimals + 2))), max: fixed ? max : Number(max.toFixed(Math.min(20, decimals + 2))), step, values, decimals };
}

/** The fewest decimals that write `step` (and so every multiple of it) exactly. */
function decimalsOf(step: number): number {
  for (let d = 0; d < 15; d += 1) {
    const scaled = step * 10 ** d;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
  }
  return 15;
}

/** A tick label: fixed decimals, or exponent form for very large or very small magnitudes. */
export function formatTick(value: number, decimals: number): string {
  if (value === 0 || Object.is(value, -0)) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6 || decimals > 6) return value.toExponential(2).replace('e+', 'e');
  const text = value.toFixed(decimals);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}
