import { CountTree } from './count-tree';
import { assertLengths, splitLongDocuments, type PackedSequence, type PackingStrategy, type Piece } from './strategy';

/**
 * Pieces waiting to be packed, indexed by length: `takeLargestAtMost(r)` removes the longest
 * piece of length <= r (first come, first served among equal lengths) in O(log max).
 */
class PiecePool {
  private readonly counts: CountTree;
  private readonly queues: Piece[][] = [];
  private readonly heads: number[] = [];

  constructor(max: number) {
    this.counts = new CountTree(max);
  }

  add(piece: Piece): void {
    (this.queues[piece.length] ??= []).push(piece);
    this.heads[piece.length] ??= 0;
    this.counts.add(piece.length, 1);
  }

  takeLargestAtMost(room: number): Piece | null {
    const length = this.counts.predecessor(room);
    if (length <= 0) return null;
    this.counts.add(length, -1);
    return this.queues[length][this.heads[length]++];
  }

  /** Undoes the latest `takeLargestAtMost` that returned `piece` (undo in reverse order restores the pool exactly). */
  putBack(piece: Piece): void {
    this.heads[piece.length]--;
    this.counts.add(piece.length, 1);
  }

  /** Greedy fill of `room` tokens with the longest pieces that fit; returns the pieces taken. */
  fill(room: number): Piece[] {
    const taken: Piece[] = [];
    while (room > 0) {
      const next = this.takeLargestAtMost(room);
      if (next === null) break;
      taken.push(next);
      room -= next.length;
    }
    return taken;
  }

  putBackAll(pieces: Piece[]): void {
    for (let i = pieces.length - 1; i >= 0; i--) this.putBack(pieces[i]);
  }
}

const sum = (pieces: Piece[]) => pieces.reduce((total, piece) => total + piece.length, 0);

/**
 * `bucket`: the multi-bucket data composition of Yang, Peng, Liu et al., "Beyond Fixed Length:
 * Bucket Pre-training is All You Need" (arXiv 2407.07495; the method of the XuanYuan3 models).
 * Our reading of its Algorithms 1-2 ("Bucket LLM" / "Generate_a_Bucket"), for one pool of
 * documents (the pipeline's window):
 *
 * 1. A document longer than the largest bucket B_max is the only one ever cut: it yields
 *    floor(len / B_max) full B_max sequences and its remainder goes to the pool like any
 *    document. So truncation happens exactly for documents longer than B_max.
 * 2. Generate a bucket: take the longest piece left; for each bucket that holds it, smallest
 *    first, fill the remaining room greedily with the longest pieces that still fit. Keep the
 *    first bucket whose padding is at most the padding threshold P (a share of its length);
 *    if none reaches P, the one with the lowest padding share. Longest-first keeps the pieces
 *    per sequence (concatenation) low, smallest-bucket-first sends most data to the 2k
 *    bucket, and the best-fitting fill keeps padding near zero while the pool holds short
 *    documents. When the pool runs dry (medium pieces left and no short ones), a larger
 *    bucket holding several medium pieces pads less than one medium piece per 2k sequence.
 *
 * Padding remains only where no choice reaches P, typically at the end of a pool; the
 * pipeline's `WindowPacker` carries such sequences into the next window.
 */
export class BucketStrategy implements PackingStrategy {
  readonly name = 'bucket' as const;

  /** `paddingThreshold`: P, the padding share a bucket may have and still be chosen first. */
  constructor(
    readonly lengths: readonly number[],
    private readonly paddingThreshold = 0.01,
  ) {
    assertLengths(lengths, false, 'bucket');
    if (!(paddingThreshold >= 0 && paddingThreshold <= 1)) throw new Error(`padding threshold must be in [0, 1], got ${paddingThreshold}`);
  }

  pack(lengths: ArrayLike<number>): PackedSequence[] {
    const max = this.lengths[this.lengths.length - 1];
    const pool = new PiecePool(max);
    const sequences = splitLongDocuments(lengths, max, (piece) => pool.add(piece));
    for (let first = pool.takeLargestAtMost(max); first !== null; first = pool.takeLargestAtMost(max)) {
      // Each candidate is filled from the same pool state and put back; the chosen one is refilled.
      let chosen = 0;
      let bestShare = Number.POSITIVE_INFINITY;
      for (const capacity of this.lengths) {
        if (capacity < first.length) continue;
        const fill = pool.fill(capacity - first.length);
        const share = (capacity - first.length - sum(fill)) / capacity;
        pool.putBackAll(fill);
        if (share < bestShare) {
          bestShare = share;
          chosen = capacity;
        }
        if (share <= this.paddingThreshold) break;
      }
      const pieces = [first, ...pool.fill(chosen - first.length)];
      sequences.push({ capacity: chosen, pieces, used: sum(pieces) });
    }
    return sequences;
  }
}
