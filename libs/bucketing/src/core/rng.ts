/**
 * Seeded pseudo-random numbers; the bucketing library never calls `Math.random`.
 *
 * Generator: SplitMix32, the 32-bit variant of Steele, Lea & Flood, "Fast splittable
 * pseudorandom number generators" (OOPSLA 2014): the state advances by the golden-ratio
 * increment 0x9e3779b9 and each output is the state passed through the MurmurHash3 `fmix32`
 * finaliser (constants 0x85ebca6b, 0xc2b2ae35).
 */

export interface Rng {
  /** Next unsigned 32-bit integer. */
  nextUint32(): number;
  /** Uniform double in [0, 1) (53 random bits). */
  nextFloat(): number;
  /** Uniform integer in [0, n) for 0 < n <= 2^32, without modulo bias (rejection sampling). */
  nextInt(n: number): number;
}

/** MurmurHash3 finaliser: a bijection on 32-bit integers with full avalanche. */
export function mix32(value: number): number {
  let z = value >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A 32-bit seed for one sub-stream, e.g. `deriveSeed(runSeed, window, part)`: each part is
 * folded in with `mix32`, so different paths give unrelated streams.
 */
export function deriveSeed(seed: number, ...path: number[]): number {
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be a safe integer, got ${seed}`);
  let h = mix32((seed >>> 0) ^ mix32(Math.floor(seed / 2 ** 32) + 0x9e3779b9));
  for (const part of path) h = mix32(h ^ mix32((part >>> 0) + 0x632be5ab) ^ mix32(Math.floor(part / 2 ** 32)));
  return h;
}

/** SplitMix32 generator from a 32-bit seed. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    return mix32(state);
  };
  const nextFloat = (): number => ((nextUint32() >>> 5) * 67108864 + (nextUint32() >>> 6)) / 9007199254740992;
  const nextInt = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) throw new Error(`nextInt needs an integer in (0, 2^32], got ${n}`);
    const limit = Math.floor(0x100000000 / n) * n;
    for (;;) {
      const x = nextUint32();
      if (x < limit) return x % n;
    }
  };
  return { nextUint32, nextFloat, nextInt };
}

/** Fisher–Yates shuffle in place (Knuth, TAOCP vol. 2, Algorithm P); returns the array. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const held = items[i];
    items[i] = items[j];
    items[j] = held;
  }
  return items;
}
