/**
 * Near-duplicate detection by MinHash with LSH banding (Broder, "On the resemblance and
 * containment of documents", 1997; Leskovec, Rajaraman & Ullman, *Mining of Massive Datasets*,
 * ch. 3). Memory grows with the signatures (k × 4 bytes and b bucket entries per accepted pair),
 * never with the texts.
 *
 * - Shingles: the character 5-grams (code points) of a pair's normalized text; a text shorter
 *   than 5 is one shingle.
 * - Signature: for each of k seeded hash functions h_i (MurmurHash3's `fmix32` of the shingle hash
 *   xor a per-function seed), sig[i] = min over shingles s of h_i(s). For two sets A, B,
 *   P(sig_A[i] = sig_B[i]) = J(A, B) = |A ∩ B| / |A ∪ B|, so the share of equal slots estimates J.
 * - Banding: the k slots are cut into b bands of r rows; two pairs are candidates when some band
 *   is equal, which happens with probability 1 − (1 − J^r)^b. `bandsFor` picks the largest r
 *   whose candidate probability at the threshold is still ≥ 0.95, so few dissimilar pairs are
 *   compared and few pairs at the threshold are missed.
 * - Confirmation: a candidate is a near duplicate when its estimated J is ≥ the threshold.
 */
import { deriveSeed, mix32 } from '@xyp/random';

/** MinHash settings: k (`permutations`), shingle length, Jaccard threshold and hash seed. */
export interface MinHashOptions {
  /** Number of hash functions k (default 64). */
  permutations?: number;
  /** Shingle length in characters (default 5). */
  shingleSize?: number;
  /** Seed of the hash functions (default 0); signatures compare only under the same seed. */
  seed?: number;
}

const DEFAULT_PERMUTATIONS = 64;
const DEFAULT_SHINGLE = 5;

function permutationSeeds(permutations: number, seed: number): Uint32Array {
  const seeds = new Uint32Array(permutations);
  for (let i = 0; i < permutations; i++) seeds[i] = deriveSeed(seed, 'minhash', i);
  return seeds;
}

/** A MinHash signature function for fixed options (the seeds are derived once). */
export function minHasher(options: MinHashOptions = {}): (text: string) => Uint32Array {
  const permutations = options.permutations ?? DEFAULT_PERMUTATIONS;
  const shingleSize = options.shingleSize ?? DEFAULT_SHINGLE;
  if (!Number.isInteger(permutations) || permutations < 1) throw new Error(`permutations must be a positive integer, got ${permutations}`);
  if (!Number.isInteger(shingleSize) || shingleSize < 1) throw new Error(`shingleSize must be a positive integer, got ${shingleSize}`);
  const seeds = permutationSeeds(permutations, options.seed ?? 0);
  return (text: string) => {
    const codePoints: number[] = [];
    for (const char of text) codePoints.push(char.codePointAt(0) ?? 0);
    const signature = new Uint32Array(permutations).fill(0xffffffff);
    const windows = Math.max(1, codePoints.length - shingleSize + 1);
    for (let start = 0; start < windows; start++) {
      // FNV-1a over the shingle's code points, then the per-function fmix32.
      let shingle = 0x811c9dc5;
      const end = Math.min(codePoints.length, start + shingleSize);
      for (let j = start; j < end; j++) shingle = Math.imul(shingle ^ codePoints[j], 0x01000193);
      for (let i = 0; i < permutations; i++) {
        // mix32 inlined: this loop is the ingest's hot path.
        let h = shingle ^ seeds[i];
        h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
        h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
        h = (h ^ (h >>> 16)) >>> 0;
        if (h < signature[i]) signature[i] = h;
      }
    }
    return signature;
  };
}

/** The share of equal slots of two signatures of the same length: an estimate of their Jaccard similarity. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array, offsetB = 0): number {
  let equal = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[offsetB + i]) equal++;
  return equal / a.length;
}

/** LSH bands (b) and rows per band (r), b·r ≤ k: the largest r with 1 − (1 − t^r)^b ≥ 0.95 at threshold t. */
export function bandsFor(threshold: number, permutations: number): { bands: number; rows: number } {
  if (!(threshold > 0 && threshold <= 1)) throw new Error(`near-duplicate threshold must be in (0, 1], got ${threshold}`);
  let best = { bands: permutations, rows: 1 };
  for (let rows = 1; rows <= permutations; rows++) {
    const bands = Math.floor(permutations / rows);
    if (1 - (1 - threshold ** rows) ** bands >= 0.95) best = { bands, rows };
  }
  return best;
}

/** Where an indexed signature came from, returned when a later one matches it. */
export interface NearDuplicateMatch<Ref> {
  ref: Ref;
  similarity: number;
}

/**
 * An LSH index of accepted signatures. `findOrAdd` returns the first earlier signature whose
 * estimated Jaccard similarity is ≥ the threshold, or indexes the new one and returns undefined.
 */
export class NearDuplicateIndex<Ref> {
  private readonly bands: number;
  private readonly rows: number;
  private signatures: Uint32Array;
  private readonly refs: Ref[] = [];
  /**
   * Per band: a 30-bit hash of the band's rows → the signatures in that bucket (one index, or a
   * list once two share it). 30-bit keys stay small integers in V8, so an entry costs tens of
   * bytes; a hash collision only adds a candidate, which the full-signature check then drops.
   */
  private readonly buckets: Map<number, number | number[]>[];

  constructor(
    readonly permutations: number,
    readonly threshold: number,
  ) {
    ({ bands: this.bands, rows: this.rows } = bandsFor(threshold, permutations));
    this.signatures = new Uint32Array(permutations * 1024);
    this.buckets = Array.from({ length: this.bands }, () => new Map<number, number | number[]>());
  }

  /** Number of signatures indexed. */
  get size(): number {
    return this.refs.length;
  }

  private bandKeys(signature: Uint32Array): number[] {
    const keys: number[] = [];
    for (let band = 0; band < this.bands; band++) {
      let h = 0x9e3779b9;
      for (let row = band * this.rows; row < (band + 1) * this.rows; row++) h = mix32(h ^ signature[row]);
      keys.push(h >>> 2);
    }
    return keys;
  }

  /** The best earlier match at or above the threshold; else `signature` is indexed under `ref`. */
  findOrAdd(signature: Uint32Array, ref: Ref): NearDuplicateMatch<Ref> | undefined {
    if (signature.length !== this.permutations) throw new Error(`signature has ${signature.length} slots, the index ${this.permutations}`);
    const keys = this.bandKeys(signature);
    let best: { index: number; similarity: number } | undefined;
    let seen: Set<number> | undefined;
    for (let band = 0; band < this.bands; band++) {
      const bucket = this.buckets[band].get(keys[band]);
      if (bucket === undefined) continue;
      for (const index of typeof bucket === 'number' ? [bucket] : bucket) {
        if (seen?.has(index)) continue;
        (seen ??= new Set()).add(index);
        const similarity = estimateJaccard(signature, this.signatures, index * this.permutations);
        if (similarity >= this.threshold && (best === undefined || similarity > best.similarity)) best = { index, similarity };
      }
    }
    if (best) return { ref: this.refs[best.index], similarity: best.similarity };
    this.add(signature, ref, keys);
    return undefined;
  }

  private add(signature: Uint32Array, ref: Ref, keys: number[]): void {
    const index = this.refs.length;
    if ((index + 1) * this.permutations > this.signatures.length) {
      const grown = new Uint32Array(this.signatures.length * 2);
      grown.set(this.signatures);
      this.signatures = grown;
    }
    this.signatures.set(signature, index * this.permutations);
    this.refs.push(ref);
    for (let band = 0; band < this.bands; band++) {
      const buckets = this.buckets[band];
      const bucket = buckets.get(keys[band]);
      if (bucket === undefined) buckets.set(keys[band], index);
      else if (typeof bucket === 'number') buckets.set(keys[band], [bucket, index]);
      else bucket.push(index);
    }
  }
}
