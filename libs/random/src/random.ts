/**
 * Seeded pseudo-random numbers for every pure algorithm of the platform (packing shuffles,
 * mixture sampling). Nothing calls `Math.random`: every random choice comes from a
 * generator built here from an explicit seed, so the same seed always gives the same output.
 *
 * Generator: SplitMix32, the 32-bit variant of Steele, Lea & Flood, "Fast splittable
 * pseudorandom number generators" (OOPSLA 2014). State advances by the golden-ratio
 * increment 0x9e3779b9 and each output is the state passed through a xorshift-multiply
 * finaliser (the MurmurHash3 `fmix32` constants 0x85ebca6b and 0xc2b2ae35).
 */

/** A deterministic stream of numbers; all methods advance the same state. */
export interface Rng {
  /** Next unsigned 32-bit integer. */
  nextUint32(): number;
  /** Uniform double in [0, 1) with 53 random bits (two 32-bit draws). */
  nextFloat(): number;
  /** Uniform integer in [0, n) for a positive safe integer n, without modulo bias. */
  nextInt(n: number): number;
}

/** MurmurHash3 finaliser: a bijection on 32-bit integers with full avalanche. */
export function mix32(value: number): number {
  let z = value >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a (32-bit) over the UTF-16 code units of a string. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Folds any safe integer seed (negative and above 2^32 included) into 32 bits, so that
 * seeds differing only in their high bits still give different streams.
 */
export function seedToUint32(seed: number): number {
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be a safe integer, got ${seed}`);
  const low = seed >>> 0;
  const high = Math.floor(seed / 2 ** 32) >>> 0;
  return mix32(low ^ mix32(high + 0x9e3779b9));
}

/**
 * A 32-bit seed for one sub-stream, e.g. `deriveSeed(runSeed, window, part)` or
 * `deriveSeed(seed, 'category:news')`: each part (a safe integer, or a label hashed with
 * FNV-1a) is folded in with `mix32`, so different paths give unrelated streams.
 */
export function deriveSeed(seed: number, ...path: (number | string)[]): number {
  let h = seedToUint32(seed);
  for (const part of path) h = mix32(h ^ mix32((typeof part === 'string' ? hashString(part) : seedToUint32(part)) + 0x632be5ab));
  return h;
}

/**
 * SplitMix32 with its state in the open: the whole state is one uint32, so a checkpoint can store
 * it (`state`) and a resumed run continues the same stream.
 */
export class SplitMix32 implements Rng {
  private current: number;

  constructor(seed: number) {
    this.current = seedToUint32(seed);
  }

  /** The generator's whole state; setting it continues the stream from where it was read. */
  get state(): number {
    return this.current;
  }

  set state(value: number) {
    this.current = value >>> 0;
  }

  nextUint32(): number {
    this.current = (this.current + 0x9e3779b9) >>> 0;
    return mix32(this.current);
  }

  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  nextInt(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`nextInt needs a positive safe integer, got ${n}`);
    if (n <= 0x100000000) {
      // Rejection sampling on 32 bits: accept only below the largest multiple of n.
      const limit = Math.floor(0x100000000 / n) * n;
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return x % n;
      }
    }
    return Math.floor(this.nextFloat() * n);
  }
}

/** SplitMix32 generator from a safe-integer seed. */
export function createRng(seed: number): SplitMix32 {
  return new SplitMix32(seed);
}

/** Standard normal draw (Box–Muller, cosine branch): `√(−2 ln u)·cos(2πv)`, u ∈ (0, 1], v ∈ [0, 1). */
export function nextNormal(rng: Rng): number {
  const u = 1 - rng.nextFloat();
  const v = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** A seed for a child generator or a TF.js random op (which wants a positive int32): uniform in [0, 2³¹ − 1). */
export function nextSeed(rng: Rng): number {
  return rng.nextUint32() % 2147483647;
}

/** Fisher–Yates shuffle in place (Knuth, TAOCP vol. 2, Algorithm P); returns the array. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = rng.nextInt(i + 1);
    const held = items[i];
    items[i] = items[j];
    items[j] = held;
  }
  return items;
}
