import type { PackedSequence, PackingStrategy } from './strategy';
import type { EmittedSequence } from './window';

/**
 * Documents longer than the largest sequence length L. The strategies that cut them the way
 * `splitLongDocuments` does (`bucket`, `bfd`, `bfd-buckets`) turn a document of N > L tokens
 * into whole L-token pieces from its start, each a full sequence of its own, and pack the rest
 * like a document of that length. The pipeline therefore writes those pieces at once, as their
 * tokens are known, and holds only the last piece — `N - L * (ceil(N / L) - 1)` tokens, 1 to L —
 * in the packing window, as an item at that offset. When N is a multiple of L that last piece is
 * L tokens long and the strategy packs it as a full sequence too, so the plan is the strategy's
 * own; the window still counts all N tokens, so window boundaries, and with them the packing of
 * everything else, stay those of the whole document. Only the order differs: the whole pieces
 * are written in document order before the window, not shuffled within it.
 *
 * For other strategies (`fixed` cuts the concatenated stream wherever L falls) the document goes
 * into the window whole.
 */
export class LongDocuments {
  /** The largest sequence length L. */
  readonly max: number;
  /** Whether the strategy cuts long documents as above (checked on a probe). */
  readonly splits: boolean;

  constructor(readonly strategy: PackingStrategy) {
    this.max = strategy.lengths[strategy.lengths.length - 1];
    this.splits = splitsLikeSplitLongDocuments(strategy);
  }

  /** How many whole L pieces of a document of `length` tokens are written outside the window. */
  wholePieces(length: number): number {
    return this.splits && length > this.max ? Math.ceil(length / this.max) - 1 : 0;
  }

  /**
   * The sequences of whole pieces `[first, first + tokens.length / L)` of document `line`, one
   * piece each; `tokens` holds exactly their tokens.
   */
  sequences(line: number, category: string, docLength: number, first: number, tokens: Int32Array): EmittedSequence[] {
    const max = this.max;
    if (tokens.length % max !== 0) throw new Error(`whole pieces need a multiple of ${max} tokens, got ${tokens.length}`);
    const out: EmittedSequence[] = [];
    for (let k = 0; k * max < tokens.length; k++) {
      const item = { line, category, length: max, offset: (first + k) * max, docLength, tokens: tokens.subarray(k * max, (k + 1) * max) };
      out.push({ capacity: max, category, used: max, pieces: [{ item, start: 0, length: max }] });
    }
    return out;
  }
}

/** The plan as sorted strings: the same sequences in any order compare equal. */
function canonical(sequences: PackedSequence[]): string[] {
  return sequences.map((sequence) => `${sequence.capacity}/${sequence.used}:${sequence.pieces.map((piece) => `${piece.doc}@${piece.start}+${piece.length}`).join(',')}`).sort();
}

/**
 * Checks on small probes that the strategy packs a document longer than L as whole L pieces plus
 * its remainder packed like a document of that length, and a document of exactly L as one full
 * sequence, whatever else is in the group.
 */
function splitsLikeSplitLongDocuments(strategy: PackingStrategy): boolean {
  const max = strategy.lengths[strategy.lengths.length - 1];
  const full = (doc: number, start: number): PackedSequence => ({ capacity: max, used: max, pieces: [{ doc, start, length: max }] });
  const shift = (sequences: PackedSequence[], offsets: Map<number, number>): PackedSequence[] =>
    sequences.map((sequence) => ({ ...sequence, pieces: sequence.pieces.map((piece) => ({ ...piece, start: piece.start + (offsets.get(piece.doc) ?? 0) })) }));
  try {
    const a = Math.max(1, Math.floor(max / 3));
    const b = Math.max(1, max - 2);
    const expected = [full(1, 0), full(1, max), full(3, 0), ...shift(strategy.pack([a, 1, b, 1]), new Map([[1, 2 * max], [3, max]]))];
    if (JSON.stringify(canonical(strategy.pack([a, 2 * max + 1, b, max + 1]))) !== JSON.stringify(canonical(expected))) return false;
    const exact = strategy.pack([a, max, b]);
    const without = strategy.pack([a, b]).map((sequence) => ({ ...sequence, pieces: sequence.pieces.map((piece) => ({ ...piece, doc: piece.doc === 1 ? 2 : piece.doc })) }));
    return JSON.stringify(canonical(exact)) === JSON.stringify(canonical([full(1, 0), ...without]));
  } catch {
    return false;
  }
}
