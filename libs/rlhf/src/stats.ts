/** Small statistics the filters and tiers share. Plain numbers in, plain numbers out. */

/** Arithmetic mean; NaN for an empty list. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/**
 * Sample standard deviation, divisor n − 1 (Bessel's correction; numpy `std(ddof=1)`,
 * pandas `.std()`): √(Σ (x − x̄)² / (n − 1)). NaN for fewer than 2 values.
 */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let ss = 0;
  for (const x of xs) ss += (x - m) * (x - m);
  return Math.sqrt(ss / (xs.length - 1));
}

/** The type-7 quantile (`@xyp/stats`), re-exported for the rlhf callers. */
export { quantileType7 } from '@xyp/stats';

/**
 * Largest-remainder (Hamilton) apportionment of `total` seats by `sizes`: each key gets
 * ⌊total·size/Σsize⌋, and the seats left over go one each to the largest fractional parts (ties
 * to the key that sorts first). The counts sum to `total` and each is within one of its exact share;
 * with total ≤ Σsize no key gets more than its size.
 */
export function largestRemainder(sizes: ReadonlyMap<string, number>, total: number): Map<string, number> {
  const sum = [...sizes.values()].reduce((a, b) => a + b, 0);
  const out = new Map<string, number>();
  if (sum <= 0 || total <= 0) {
    for (const k of sizes.keys()) out.set(k, 0);
    return out;
  }
  const parts = [...sizes].map(([key, size]) => {
    const exact = (total * size) / sum;
    const base = Math.floor(exact);
    return { key, base, frac: exact - base };
  });
  let left = total - parts.reduce((a, p) => a + p.base, 0);
  const order = [...parts].sort((a, b) => b.frac - a.frac || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const p of order) {
    if (left <= 0) break;
    p.base += 1;
    left -= 1;
  }
  for (const p of parts) out.set(p.key, p.base);
  return out;
}
