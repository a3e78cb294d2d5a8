/** The engine's byte-level tokenizer lives in `@xyp/tokenizer` (the corpus stage packs with it too). */
export { BYTE_VOCAB_SIZE, ByteTokenizer, SPECIAL_TOKENS, type ChatMessage, type ChatRole } from '@xyp/tokenizer';
