import { packBestFitDecreasing } from './best-fit';
import { assertLengths, type PackedSequence, type PackingStrategy } from './strategy';

/**
 * `bfd-buckets`: the global best-fit-decreasing reference over several sequence lengths.
 * 1. Documents longer than the largest length are cut into whole largest-length pieces
 *    (each a full sequence) plus a remainder: the only truncation.
 * 2. Pieces are sorted longest first.
 * 3. Each piece goes into the open sequence with the least room that still holds it; when
 *    none does, it opens a sequence of the smallest length that holds it.
 * 4. At the end every sequence shrinks to the smallest length that holds its content (a
 *    no-op after step 3, whose sequences start with a piece longer than any smaller length).
 * The placement is `bucket`'s; unlike `bucket`, each window is packed on its own and written
 * as it is (nothing is carried into the next window, no category tails are pooled), which is
 * the reference applied to whatever pool it is given. A baseline for `xyp bench packing`.
 */
export class BestFitDecreasingBucketsStrategy implements PackingStrategy {
  readonly name = 'bfd-buckets' as const;
  readonly pooled = false;

  constructor(readonly lengths: readonly number[]) {
    assertLengths(lengths, false, 'bfd-buckets');
  }

  pack(lengths: ArrayLike<number>): PackedSequence[] {
    return packBestFitDecreasing(lengths, this.lengths);
  }
}
