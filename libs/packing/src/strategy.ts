/**
 * Packing strategies: each turns the token lengths of a group of documents into packed
 * sequences, i.e. lists of document pieces with a capacity (the sequence length a trainer pads
 * to). Strategies see lengths only, never tokens, so they are pure and cheap to test; the
 * pipeline copies tokens according to the plan.
 */

/** A contiguous run of one document's tokens: `[start, start + length)` of document `doc`. */
export interface Piece {
  /** Index of the document in the input of `pack`. */
  doc: number;
  start: number;
  length: number;
}

/** One training sequence: pieces in order, padded up to `capacity` tokens. */
export interface PackedSequence {
  capacity: number;
  pieces: Piece[];
  /** Sum of the pieces' lengths; `capacity - used` is the padding. */
  used: number;
}

import { STRATEGY_NAMES, type StrategyName } from '@xyp/contracts';

export { STRATEGY_NAMES, type StrategyName };

export interface PackingStrategy {
  readonly name: StrategyName;
  /** Sequence lengths this strategy emits, ascending: several for `bucket`, one otherwise. */
  readonly lengths: readonly number[];
  /**
   * True when the pipeline's `WindowPacker` may hold back an under-filled sequence for the next
   * window (the document pool of arXiv 2407.07495) and pool the shard's leftovers across
   * categories; false for a reference that packs each window as it is given.
   */
  readonly pooled: boolean;
  /**
   * Packs documents of the given token lengths (each >= 1). Every token of every document lands
   * in exactly one piece, pieces of a document are emitted in order, and no sequence holds more
   * than its capacity. Deterministic: same lengths, same plan.
   */
  pack(lengths: ArrayLike<number>): PackedSequence[];
}

/**
 * Splits documents longer than `max` the way `bucket` and `bfd` do: whole `max`-token pieces,
 * each a full sequence on its own (no padding, no concatenation), and the remainder as a piece
 * to pack. Returns the full sequences and calls `remainder` for every piece left to pack
 * (whole documents included), in document order.
 */
export function splitLongDocuments(
  lengths: ArrayLike<number>,
  max: number,
  remainder: (piece: Piece) => void,
): PackedSequence[] {
  const full: PackedSequence[] = [];
  for (let doc = 0; doc < lengths.length; doc++) {
    const length = lengths[doc];
    if (!Number.isInteger(length) || length < 1) throw new Error(`document ${doc} has invalid length ${length}`);
    let start = 0;
    if (length > max) {
      for (; start + max <= length; start += max) full.push({ capacity: max, used: max, pieces: [{ doc, start, length: max }] });
    }
    if (start < length) remainder({ doc, start, length: length - start });
  }
  return full;
}

/** Checks bucket lengths: positive integers, strictly ascending. */
export function assertLengths(lengths: readonly number[], single: boolean, name: string): void {
  if (lengths.length === 0) throw new Error(`strategy ${name} needs at least one sequence length`);
  if (single && lengths.length !== 1) throw new Error(`strategy ${name} takes exactly one sequence length, got ${lengths.join(',')}`);
  lengths.forEach((length, i) => {
    if (!Number.isInteger(length) || length < 1) throw new Error(`sequence length must be a positive integer, got ${length}`);
    if (i > 0 && length <= lengths[i - 1]) throw new Error(`sequence lengths must be strictly ascending, got ${lengths.join(',')}`);
  });
}
