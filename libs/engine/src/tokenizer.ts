/**
 * Byte-level tokenizer of the engine's small models: ids 0-255 are the UTF-8 bytes, then four special
 * tokens. It needs no training, covers every string (Chinese finance text included) and keeps the
 * embedding and LM head of a model a few hundred rows tall. The 128k-entry Llama-3 tokenizer used for
 * shard packing would make the embedding and head of a width-256 model 2 × 33M parameters, far larger
 * than its 4-layer trunk, and the head's matmul would dominate every step.
 */
export const SPECIAL_TOKENS = { endOfText: 256, system: 257, user: 258, assistant: 259 } as const;
export const BYTE_VOCAB_SIZE = 260;

export type ChatRole = 'system' | 'user' | 'assistant';
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export class ByteTokenizer {
  readonly vocabSize = BYTE_VOCAB_SIZE;
  readonly eos = SPECIAL_TOKENS.endOfText;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  encode(text: string): number[] {
    return Array.from(this.encoder.encode(text));
  }

  /** Bytes back to text; special tokens are dropped. */
  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] < 256) bytes.push(ids[i]);
    return this.decoder.decode(new Uint8Array(bytes));
  }

  /**
   * Chat template: `<role> content` for every message, then `<assistant>` when a reply is to be
   * generated. `trainMask[i]` is 1 on the content and closing `<eot>` of assistant messages: the tokens
   * SFT computes its loss on.
   */
  encodeChat(messages: ChatMessage[], addGenerationPrompt: boolean): { ids: number[]; trainMask: number[] } {
    const ids: number[] = [];
    const trainMask: number[] = [];
    for (const message of messages) {
      ids.push(SPECIAL_TOKENS[message.role]);
      trainMask.push(0);
      const body = [...this.encode(message.content), this.eos];
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
