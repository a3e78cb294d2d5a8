import { assertLengths, type PackedSequence, type PackingStrategy } from './strategy';

/**
 * `fixed`: the common baseline (e.g. GPT-3 and Megatron-LM's GPTDataset). Documents are
 * concatenated in order and the stream is cut every L tokens, so every document that crosses a
 * cut is truncated. Only the last sequence of a group is padded (nothing is dropped).
 */
export class FixedStrategy implements PackingStrategy {
  readonly name = 'fixed' as const;
  readonly pooled = true;

  constructor(readonly lengths: readonly number[]) {
    assertLengths(lengths, true, 'fixed');
  }

  pack(lengths: ArrayLike<number>): PackedSequence[] {
    const capacity = this.lengths[0];
    const sequences: PackedSequence[] = [];
    let current: PackedSequence = { capacity, pieces: [], used: 0 };
    for (let doc = 0; doc < lengths.length; doc++) {
      const length = lengths[doc];
      if (!Number.isInteger(length) || length < 1) throw new Error(`document ${doc} has invalid length ${length}`);
      for (let start = 0; start < length; ) {
        const take = Math.min(length - start, capacity - current.used);
        current.pieces.push({ doc, start, length: take });
        current.used += take;
        start += take;
        if (current.used === capacity) {
          sequences.push(current);
          current = { capacity, pieces: [], used: 0 };
        }
      }
    }
    if (current.used > 0) sequences.push(current);
    return sequences;
  }
}
