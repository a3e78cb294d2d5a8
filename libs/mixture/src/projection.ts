/**
 * Euclidean projection onto the capped simplex
 *
 *   C = { w ∈ ℝⁿ : Σᵢ wᵢ = s,  loᵢ ≤ wᵢ ≤ hiᵢ }.
 *
 * The KKT conditions of  min ½‖w − v‖²  over C give  wᵢ = clamp(vᵢ − τ, loᵢ, hiᵢ)  for a
 * single shift τ (Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections onto
 * the ℓ1-ball", ICML 2008, for the plain simplex; Wang & Lu, "Projection onto the capped
 * simplex", arXiv:1503.01002, 2015, for box constraints). f(τ) = Σᵢ clamp(vᵢ − τ, loᵢ, hiᵢ)
 * is continuous, non-increasing and piecewise linear with breakpoints vᵢ − hiᵢ and
 * vᵢ − loᵢ. We evaluate f at the sorted breakpoints, find the segment where f crosses s,
 * and solve the linear piece exactly:
 *
 *   τ = (Σ_{free} vᵢ + Σ_{at lo} loᵢ + Σ_{at hi} hiᵢ − s) / |free|.
 *
 * The final clamp makes every bound hold exactly; the sum is s up to rounding (≈ n·ε).
 */

/** Checks `Σlo ≤ s ≤ Σhi` and `loᵢ ≤ hiᵢ`; returns a reason when C is empty. */
export function cappedSimplexInfeasibility(lo: readonly number[], hi: readonly number[], total = 1): string | undefined {
  const tolerance = 1e-12 * Math.max(1, lo.length);
  for (let i = 0; i < lo.length; i += 1) {
    if (!(lo[i] <= hi[i])) return `lower bound ${lo[i]} exceeds upper bound ${hi[i]} at position ${i}`;
  }
  const sumLo = lo.reduce((a, b) => a + b, 0);
  const sumHi = hi.reduce((a, b) => a + b, 0);
  if (sumLo > total + tolerance) return `lower bounds sum to ${sumLo} > ${total}`;
  if (sumHi < total - tolerance) return `upper bounds sum to ${sumHi} < ${total}`;
  return undefined;
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/**
 * Projects `v` onto {w : Σw = total, lo ≤ w ≤ hi}. Exact up to floating-point rounding;
 * the bounds hold exactly.
 * @throws Error when the set is empty (see {@link cappedSimplexInfeasibility}) or an input is not finite.
 */
export function projectOntoCappedSimplex(
  v: readonly number[],
  lo: readonly number[],
  hi: readonly number[],
  total = 1,
): number[] {
  const n = v.length;
  if (lo.length !== n || hi.length !== n) throw new Error('projectOntoCappedSimplex: v, lo and hi must have the same length');
  if (n === 0) throw new Error('projectOntoCappedSimplex: nothing to project');
  for (let i = 0; i < n; i += 1) {
    if (!Number.isFinite(v[i]) || !Number.isFinite(lo[i]) || !Number.isFinite(hi[i])) {
      throw new Error(`projectOntoCappedSimplex: non-finite input at position ${i}`);
    }
  }
  const infeasible = cappedSimplexInfeasibility(lo, hi, total);
  if (infeasible !== undefined) throw new Error(`projectOntoCappedSimplex: empty feasible set (${infeasible})`);

  const f = (tau: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i += 1) sum += clamp(v[i] - tau, lo[i], hi[i]);
    return sum;
  };
  const breakpoints = [...new Set(v.flatMap((vi, i) => [vi - hi[i], vi - lo[i]]))].sort((a, b) => a - b);

  // f(breakpoints[0]) = Σhi ≥ total and f(last) = Σlo ≤ total: find the first breakpoint with f ≤ total.
  let tau = breakpoints[breakpoints.length - 1];
  for (let k = 0; k < breakpoints.length; k += 1) {
    const value = f(breakpoints[k]);
    if (value === total) {
      tau = breakpoints[k];
      break;
    }
    if (value < total) {
      if (k === 0) {
        tau = breakpoints[0]; // Σhi within tolerance below total: every coordinate at its upper bound
        break;
      }
      const left = breakpoints[k - 1];
      const right = breakpoints[k];
      const mid = left + (right - left) / 2;
      let fixed = 0;
      let freeSum = 0;
      let freeCount = 0;
      for (let i = 0; i < n; i += 1) {
        const x = v[i] - mid;
        if (x <= lo[i]) fixed += lo[i];
        else if (x >= hi[i]) fixed += hi[i];
        else {
          freeSum += v[i];
          freeCount += 1;
        }
      }
      tau = freeCount === 0 ? left : clamp((freeSum + fixed - total) / freeCount, left, right);
      break;
    }
  }
  return v.map((vi, i) => clamp(vi - tau, lo[i], hi[i]));
}
