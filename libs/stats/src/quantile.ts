/**
 * The q-quantile by linear interpolation between order statistics, Hyndman & Fan (1996) type 7
 * — numpy's default `np.quantile(x, q)` (method 'linear') and R's default `quantile`:
 * with x sorted ascending and h = (n − 1)·q, Q = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋ + 1] − x[⌊h⌋]).
 * So q = 0 is the minimum, q = 1 the maximum and q = 0.5 the median. Throws on an empty list or
 * q outside [0, 1].
 */
export function quantileType7(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new RangeError('quantileType7: no values');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantileType7: q must be in [0, 1], got ${q}`);
  const sorted = [...xs].sort((a, b) => a - b);
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** The median (type-7 quantile at 0.5: the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  return quantileType7(xs, 0.5);
}
