export type { EncodeBatchOptions, LoadTokenizerOptions, TextTokenizer, TokenizerBackend } from './tokenizer';
export { LLAMA3, loadTokenizer, resolveTokenizerPath } from './load';
export { WELL_KNOWN_EOS_TOKENS, eosTokenFromConfig, resolveEosToken } from './special-tokens';
export { vocabularyOf } from './fallback';
export { collectGarbage } from './native-memory';
