/**
 * The tokenizer contract the corpus pipeline codes against: batch encoding of plain text into
 * token ids held in typed arrays, plus the facts a dataset writer needs (vocabulary size for the
 * token dtype, end-of-document id).
 */

/** Which implementation encodes: the Rust `tokenizers` crate through N-API, or pure JavaScript. */
export type TokenizerBackend = 'native' | 'js';

export interface EncodeBatchOptions {
  /**
   * A token id appended after each text's ids (the end-of-document token), written into the
   * same typed array so that no second copy is made.
   */
  appendId?: number;
}

export interface TextTokenizer {
  /** `llama3` or the absolute path of the `tokenizer.json` that was loaded. */
  readonly name: string;
  readonly backend: TokenizerBackend;
  /** Vocabulary size including added tokens (Llama-3: 128,256). */
  readonly vocabSize: number;
  /** Id of the end-of-document token, or null when the tokenizer has none that is known. */
  readonly eosId: number | null;
  /** The end-of-document token's text, e.g. `<|end_of_text|>`, or null. */
  readonly eosToken: string | null;
  /**
   * Encodes every text without special tokens (no BOS), in order. One `Int32Array` per text.
   * Rejects when the backend fails; callers that need per-text error isolation re-encode the
   * batch one text at a time.
   */
  encodeBatch(texts: readonly string[], options?: EncodeBatchOptions): Promise<Int32Array[]>;
  /** Id of a token string, or null when it is not in the vocabulary. */
  tokenToId(token: string): number | null;
  /** Decodes ids back to text (special tokens kept), for tests and inspection. */
  decode(ids: ArrayLike<number>): Promise<string>;
}

export interface LoadTokenizerOptions {
  /** `auto` (default) uses the native binding and falls back to JavaScript only if it cannot load. */
  backend?: 'auto' | TokenizerBackend;
  /** End-of-document token text; by default read from `tokenizer_config.json` or well-known names. */
  eosToken?: string;
  /**
   * Native backend only: after this many encoded tokens, run a full garbage collection so that
   * the Rust-side `Encoding` buffers of dropped batches are freed. The binding does not report
   * their size (about 70 bytes and several allocations per token) to V8, and young-generation
   * GCs do not finalise them, so without a bound they wait for the next full GC. 0 disables
   * it. Default 2^20 (a full GC costs ~8 ms per call, including freeing the encodings).
   */
  releaseEveryTokens?: number;
}
