import { CountTree } from './count-tree';
import { assertLengths, splitLongDocuments, type PackedSequence, type PackingStrategy, type Piece } from './strategy';

/**
 * `bfd`: best-fit decreasing bin packing into one sequence length L (Johnson, "Near-optimal bin
 * packing algorithms", MIT 1973; as used for LLM sequence packing by Ding et al., "Fewer
 * Truncations Improve Language Modeling", ICML 2024). Documents longer than L are cut into L
 * pieces plus a remainder (the only truncation); pieces are sorted by length, longest first
 * (ties in document order), and each goes into the open sequence with the least room that
 * still holds it, or into a new sequence. Open sequences are indexed by remaining room, so
 * each placement costs O(log L).
 */
export class BestFitDecreasingStrategy implements PackingStrategy {
  readonly name = 'bfd' as const;
  readonly pooled = true;

  constructor(readonly lengths: readonly number[]) {
    assertLengths(lengths, true, 'bfd');
  }

  pack(lengths: ArrayLike<number>): PackedSequence[] {
    const capacity = this.lengths[0];
    const pieces: Piece[] = [];
    const full = splitLongDocuments(lengths, capacity, (piece) => pieces.push(piece));
    pieces.sort((a, b) => b.length - a.length || a.doc - b.doc);
    const open: PackedSequence[] = [];
    const rooms = new CountTree(capacity);
    const byRoom: number[][] = [];
    for (const piece of pieces) {
      const room = rooms.successor(piece.length);
      let index: number;
      if (room < 0) {
        index = open.push({ capacity, pieces: [], used: 0 }) - 1;
      } else {
        const reused = byRoom[room].pop();
        if (reused === undefined) throw new Error(`bfd: no open sequence with room ${room}`);
        index = reused;
        rooms.add(room, -1);
      }
      const sequence = open[index];
      sequence.pieces.push(piece);
      sequence.used += piece.length;
      const left = capacity - sequence.used;
      if (left > 0) {
        (byRoom[left] ??= []).push(index);
        rooms.add(left, 1);
      }
    }
    return full.concat(open);
  }
}
