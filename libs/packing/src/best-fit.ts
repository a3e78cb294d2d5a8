import { CountTree } from './count-tree';
import { splitLongDocuments, type PackedSequence, type Piece } from './strategy';

/** Smallest of the ascending `lengths` that holds `tokens` (the last one if none does). */
export function smallestHolding(lengths: readonly number[], tokens: number): number {
  for (const length of lengths) if (length >= tokens) return length;
  return lengths[lengths.length - 1];
}

/**
 * Open sequences indexed by their remaining room: `tightest(n)` finds the open sequence with
 * the least room that still holds n tokens in O(log max). Among equal rooms, the sequence that
 * reached that room last wins.
 */
export class OpenSequences {
  readonly sequences: PackedSequence[] = [];
  private readonly rooms: CountTree;
  private readonly byRoom: number[][] = [];

  constructor(max: number) {
    this.rooms = new CountTree(max);
  }

  /** Index of the open sequence with the least room >= `tokens`, or -1. */
  tightest(tokens: number): number {
    const room = this.rooms.successor(tokens);
    return room < 0 ? -1 : this.byRoom[room][this.byRoom[room].length - 1];
  }

  open(capacity: number): number {
    const index = this.sequences.push({ capacity, pieces: [], used: 0 }) - 1;
    this.track(index);
    return index;
  }

  place(index: number, piece: Piece): void {
    const sequence = this.sequences[index];
    const room = sequence.capacity - sequence.used;
    const stack = this.byRoom[room];
    const at = stack.lastIndexOf(index);
    if (at < 0) throw new Error(`open sequence ${index} is not indexed at room ${room}`);
    stack.splice(at, 1);
    this.rooms.add(room, -1);
    sequence.pieces.push(piece);
    sequence.used += piece.length;
    this.track(index);
  }

  private track(index: number): void {
    const sequence = this.sequences[index];
    const room = sequence.capacity - sequence.used;
    if (room <= 0) return;
    (this.byRoom[room] ??= []).push(index);
    this.rooms.add(room, 1);
  }
}

/** Longest first; equal lengths in document order, then token order. */
export function byLengthDescending(a: Piece, b: Piece): number {
  return b.length - a.length || a.doc - b.doc || a.start - b.start;
}

/**
 * Best-fit decreasing over several sequence lengths, for one pool of document lengths (the
 * placement of `bucket` and `bfd-buckets`): documents longer than the largest length are cut
 * into whole largest-length sequences plus a remainder; pieces go longest first into the open
 * sequence with the least room that holds them, or open a sequence of the smallest length
 * that holds them. (The reference's last step, shrinking every sequence to the smallest length
 * that holds its content, never changes anything here: a sequence's first piece is longer
 * than every smaller length, so it is left out.)
 */
export function packBestFitDecreasing(lengths: ArrayLike<number>, buckets: readonly number[]): PackedSequence[] {
  const max = buckets[buckets.length - 1];
  const pieces: Piece[] = [];
  const full = splitLongDocuments(lengths, max, (piece) => pieces.push(piece));
  pieces.sort(byLengthDescending);
  const open = new OpenSequences(max);
  for (const piece of pieces) {
    let index = open.tightest(piece.length);
    if (index < 0) index = open.open(smallestHolding(buckets, piece.length));
    open.place(index, piece);
  }
  return full.concat(open.sequences);
}
