/**
 * What the pipeline needs from a tokenizer. `@xyp/tokenizer`'s `TextTokenizer` satisfies it; tests
 * can pass a trivial one. Kept here so the packing code does not depend on a tokenizer library.
 */
export interface TokenEncoder {
  /** One Int32Array per text, in order, with `appendId` (if given) as the last element of each. */
  encodeBatch(texts: readonly string[], options?: { appendId?: number }): Promise<Int32Array[]>;
}
