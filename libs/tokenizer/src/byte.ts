/**
 * Byte-level tokenizer of the engine's small models: ids 0-255 are the UTF-8 bytes, then four special
 * tokens. It needs no training, covers every string (Chinese finance text included) and keeps the
 * embedding and LM head of a model a few hundred rows tall. The 128k-entry Llama-3 tokenizer used for
 * shard packing would make the embedding and head of a width-256 model 2 × 33M parameters, far larger
 * than its 4-layer trunk, and the head's matmul would dominate every step.
 *
 * It implements `TextTokenizer`, so the corpus stage packs with it as it packs with Llama-3
 * (`loadTokenizer('byte')`, `corpus.bucket` param `tokenizer: byte`): shards the local engine's models
 * train on. The synchronous `encode`, `decodeText` and the chat template are what training and
 * sampling use.
 */
import type { EncodeBatchOptions, TextTokenizer } from './tokenizer';

/** The name that selects the byte tokenizer (`loadTokenizer('byte')`). */
export const BYTE = 'byte';

export const SPECIAL_TOKENS = { endOfText: 256, system: 257, user: 258, assistant: 259 } as const;
export const BYTE_VOCAB_SIZE = 260;

/** The text of each special token, as `tokenToId` and `decode` spell them. */
const SPECIAL_TOKEN_TEXT: Record<number, string> = {
  [SPECIAL_TOKENS.endOfText]: '<eot>',
  [SPECIAL_TOKENS.system]: '<system>',
  [SPECIAL_TOKENS.user]: '<user>',
  [SPECIAL_TOKENS.assistant]: '<assistant>',
};

export type ChatRole = 'system' | 'user' | 'assistant';
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export class ByteTokenizer implements TextTokenizer {
  readonly name = BYTE;
  readonly backend = 'js' as const;
  readonly vocabSize = BYTE_VOCAB_SIZE;
  /** `<eot>`: ends every document and every chat message. */
  readonly eosId: number = SPECIAL_TOKENS.endOfText;
  readonly eosToken = '<eot>';
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  encode(text: string): number[] {
    return Array.from(this.encoder.encode(text));
  }

  async encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): Promise<Int32Array[]> {
    return texts.map((text) => {
      const bytes = this.encoder.encode(text);
      const ids = new Int32Array(bytes.length + (options.appendId === undefined ? 0 : 1));
      ids.set(bytes);
      if (options.appendId !== undefined) ids[bytes.length] = options.appendId;
      return ids;
    });
  }

  /** A special token's id (`<eot>`, `<system>`, `<user>`, `<assistant>`), or the byte of a one-byte string. */
  tokenToId(token: string): number | null {
    for (const [id, text] of Object.entries(SPECIAL_TOKEN_TEXT)) if (text === token) return Number(id);
    const bytes = this.encoder.encode(token);
    return bytes.length === 1 ? bytes[0] : null;
  }

  /** Text of the byte tokens; special tokens are dropped (what a sample's reply shows). */
  decodeText(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] < 256) bytes.push(ids[i]);
    return this.decoder.decode(new Uint8Array(bytes));
  }

  /** `TextTokenizer.decode`: the text with special tokens kept, spelled `<eot>`, `<user>`, ... */
  async decode(ids: ArrayLike<number>): Promise<string> {
    let text = '';
    let run: number[] = [];
    const flush = (): void => {
      text += this.decoder.decode(new Uint8Array(run));
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const special = SPECIAL_TOKEN_TEXT[ids[i]];
      if (special === undefined) run.push(ids[i]);
      else {
        flush();
        text += special;
      }
    }
    flush();
    return text;
  }

  /**
   * Chat template: `<role> content <eot>` for every message, then `<assistant>` when a reply is to be
   * generated. `trainMask[i]` is 1 on the content and closing `<eot>` of assistant messages: the tokens
   * SFT computes its loss on.
   */
  encodeChat(messages: ChatMessage[], addGenerationPrompt: boolean): { ids: number[]; trainMask: number[] } {
    const ids: number[] = [];
    const trainMask: number[] = [];
    for (const message of messages) {
      ids.push(SPECIAL_TOKENS[message.role]);
      trainMask.push(0);
      const body = [...this.encode(message.content), this.eosId];
      ids.push(...body);
      for (let i = 0; i < body.length; i++) trainMask.push(message.role === 'assistant' ? 1 : 0);
    }
    if (addGenerationPrompt) {
      ids.push(SPECIAL_TOKENS.assistant);
      trainMask.push(0);
    }
    return { ids, trainMask };
  }
}
