/** The rotary angle table every rotary pass of the engine reads. */
/**
 * cos(p·θ_i) and sin(p·θ_i), θ_i = base^(−2i/Dh), for positions 0..P−1 (`[P, Dh/2]` each), computed
 * once per (Dh, base) and grown to the largest position asked for: the forward passes (`model.ts`) and
 * the addon's rope tables (`native.ts`) read rows of it instead of calling Math.pow, cos and sin per
 * token (the same expressions, so the same bits).
 */
const angleTables = new Map<string, { cos: Float32Array; sin: Float32Array; positions: number }>();
export function angleTable(Dh: number, base: number, positions: number): { cos: Float32Array; sin: Float32Array } {
  const key = `${Dh}:${base}`;
  const have = angleTables.get(key);
  if (have && have.positions >= positions) return have;
  const half = Dh / 2;
  const P = Math.max(positions, 2 * (have?.positions ?? 0));
  const cos = new Float32Array(P * half);
  const sin = new Float32Array(P * half);
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(base, (-2 * i) / Dh);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  const made = { cos, sin, positions: P };
  angleTables.set(key, made);
  return made;
}

