/**
 * Data-composition metrics of Yang, Peng, Liu et al., "Beyond Fixed Length: Bucket Pre-training
 * is All You Need" (arXiv 2407.07495, section 3), computed from plain counts so that shard
 * results add up exactly:
 *
 * - padding ratio       r_pad = sum_i pad(i) / sum_i len(i): padding tokens over all token
 *                       slots of the packed sequences (len(i) is the sequence's capacity);
 * - truncation ratio    r_tru = sum_j J(j) / M: share of the M documents that are cut
 *                       (J(j) = 1 when document j ends up in more than one piece);
 * - concatenation ratio r_cat = M / C: documents per training sequence (C sequences).
 *
 * The paper reports, on its corpus: BucketLLM r_pad 0.12%, r_tru 0.28%, r_cat 2.81; fixed
 * 16,384: 0.08%, 5.96%, 16.40; fixed 2,048: 0.01%, 38.39%, 2.05.
 *
 * Per category the same formulas apply as written (sequences never mix categories). Per
 * bucket, the unit is the piece: `documents` counts document pieces in that bucket and
 * `truncatedDocuments` the pieces that belong to a cut document, so `concatRatio` is pieces per
 * sequence and `truncationRatio` the share of pieces that come from cut documents.
 */
export interface CompositionCounts {
  /** Documents (per bucket: document pieces). */
  documents: number;
  /** Documents cut into more than one piece (per bucket: pieces of such documents). */
  truncatedDocuments: number;
  /** Document pieces. */
  pieces: number;
  /** Packed sequences. */
  sequences: number;
  /** Real tokens (end-of-document tokens included). */
  tokens: number;
  /** Padding tokens: capacity minus real tokens, summed over sequences. */
  paddingTokens: number;
  /** Sequences whose documents come from more than one category (shard-end leftovers). */
  mixedSequences: number;
}

export interface CompositionRatios {
  paddingRatio: number;
  truncationRatio: number;
  concatRatio: number;
}

export function emptyCounts(): CompositionCounts {
  return { documents: 0, truncatedDocuments: 0, pieces: 0, sequences: 0, tokens: 0, paddingTokens: 0, mixedSequences: 0 };
}

export function addCounts(into: CompositionCounts, from: CompositionCounts): CompositionCounts {
  into.documents += from.documents;
  into.truncatedDocuments += from.truncatedDocuments;
  into.pieces += from.pieces;
  into.sequences += from.sequences;
  into.tokens += from.tokens;
  into.paddingTokens += from.paddingTokens;
  into.mixedSequences += from.mixedSequences;
  return into;
}

/** The three ratios; 0 where the denominator is 0. */
export function ratios(counts: CompositionCounts): CompositionRatios {
  const slots = counts.tokens + counts.paddingTokens;
  return {
    paddingRatio: slots === 0 ? 0 : counts.paddingTokens / slots,
    truncationRatio: counts.documents === 0 ? 0 : counts.truncatedDocuments / counts.documents,
    concatRatio: counts.sequences === 0 ? 0 : counts.documents / counts.sequences,
  };
}

/** Counts of a run or shard: overall, per bucket length and per category. */
export interface CompositionStats {
  total: CompositionCounts;
  /** Keyed by sequence length (as a decimal string, for JSON). */
  byLength: Record<string, CompositionCounts>;
  byCategory: Record<string, CompositionCounts>;
}

export function emptyStats(lengths: readonly number[]): CompositionStats {
  return { total: emptyCounts(), byLength: Object.fromEntries(lengths.map((l) => [String(l), emptyCounts()])), byCategory: {} };
}

export function addStats(into: CompositionStats, from: CompositionStats): CompositionStats {
  addCounts(into.total, from.total);
  for (const [key, counts] of Object.entries(from.byLength)) addCounts((into.byLength[key] ??= emptyCounts()), counts);
  for (const [key, counts] of Object.entries(from.byCategory)) addCounts((into.byCategory[key] ??= emptyCounts()), counts);
  return into;
}
