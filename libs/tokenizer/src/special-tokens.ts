/**
 * End-of-document token detection. Pure: works on already-read JSON values.
 */

/** Tried in order when neither the caller nor `tokenizer_config.json` names the EOS token. */
export const WELL_KNOWN_EOS_TOKENS: readonly string[] = ['<|end_of_text|>', '<|endoftext|>', '</s>', '<eos>', '[SEP]'];

/**
 * Reads `eos_token` from a parsed Hugging Face `tokenizer_config.json`. The field is either a
 * string or an `AddedToken`-like object `{content}`.
 */
export function eosTokenFromConfig(config: unknown): string | null {
  if (typeof config !== 'object' || config === null) return null;
  const eos = (config as { eos_token?: unknown }).eos_token;
  if (typeof eos === 'string' && eos.length > 0) return eos;
  if (typeof eos === 'object' && eos !== null) {
    const content = (eos as { content?: unknown }).content;
    if (typeof content === 'string' && content.length > 0) return content;
  }
  return null;
}

/**
 * Picks the EOS token: the explicit one if given (it must exist), then the config's, then the
 * first well-known name the vocabulary has. Returns null when none is found.
 */
export function resolveEosToken(
  lookup: (token: string) => number | null,
  explicit: string | undefined,
  fromConfig: string | null,
): { token: string; id: number } | null {
  if (explicit !== undefined) {
    const id = lookup(explicit);
    if (id === null) throw new Error(`EOS token ${JSON.stringify(explicit)} is not in the tokenizer's vocabulary`);
    return { token: explicit, id };
  }
  for (const candidate of fromConfig === null ? WELL_KNOWN_EOS_TOKENS : [fromConfig, ...WELL_KNOWN_EOS_TOKENS]) {
    const id = lookup(candidate);
    if (id !== null) return { token: candidate, id };
  }
  return null;
}
