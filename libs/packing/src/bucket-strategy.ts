import { packBestFitDecreasing } from './best-fit';
import { assertLengths, type PackedSequence, type PackingStrategy } from './strategy';

/**
 * `bucket`: the multi-bucket data composition of Yang, Peng, Liu et al., "Beyond Fixed Length:
 * Bucket Pre-training is All You Need" (arXiv 2407.07495; the method of the XuanYuan3 models),
 * with best-fit-decreasing placement across the buckets:
 *
 * 1. A document longer than the largest bucket B_max is the only one ever cut: it yields
 *    floor(len / B_max) full B_max sequences and its remainder is packed like any document.
 *    So truncation happens exactly for documents longer than B_max.
 * 2. Pieces are placed longest first, each into the open sequence (of any bucket) with the
 *    least room that still holds it; a piece that fits nowhere opens a sequence of the
 *    smallest bucket that holds it. Long pieces open the large buckets and the next long
 *    pieces fill their room, so short documents are left for the 2k bucket: few documents
 *    per sequence (concatenation) and most sequences small.
 * 3. (In the pipeline's `WindowPacker`, the paper's document pool:) a sequence padded by
 *    more than the threshold P is not written but carried into the next window, where more
 *    documents can fill it; what is left at the end of a shard is packed across categories.
 *
 * The paper's own Algorithm 2 ("Generate_a_Bucket": take the longest piece, fill each bucket
 * greedily, smallest bucket first, keep the first whose padding is at most P) was the previous
 * implementation. Measured side by side (`xyp bench packing`), it sends more documents to the
 * large buckets (higher concatenation) and stops filling a sequence as soon as its padding is
 * under P, so P acts as a floor on padding rather than a ceiling; the placement above matches
 * or beats it on every distribution of the benchmark. With power-of-two buckets every sequence
 * holds one piece longer than half its capacity, so no sequence could be split into smaller
 * ones: the bucket counts of the large buckets are the least the pieces allow.
 */
export class BucketStrategy implements PackingStrategy {
  readonly name = 'bucket' as const;
  readonly pooled = true;

  constructor(readonly lengths: readonly number[]) {
    assertLengths(lengths, false, 'bucket');
  }

  pack(lengths: ArrayLike<number>): PackedSequence[] {
    return packBestFitDecreasing(lengths, this.lengths);
  }
}
