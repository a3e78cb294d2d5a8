export type { EncodeBatchOptions, LoadTokenizerOptions, TextTokenizer, TokenizerBackend } from './tokenizer';
export { LLAMA3, loadTokenizer, resolveTokenizerPath } from './load';
export { WELL_KNOWN_EOS_TOKENS, eosTokenFromConfig, resolveEosToken } from './special-tokens';
export { vocabularyOf } from './fallback';
export { collectGarbage } from './native-memory';
export { BYTE, BYTE_VOCAB_SIZE, ByteTokenizer, SPECIAL_TOKENS, type ChatMessage, type ChatRole } from './byte';
