import { describe, expect, it } from 'vitest';
import { completeText, completeUtf8Length } from './utf8-text';

const bytes = (text: string) => Array.from(Buffer.from(text, 'utf8'));

describe('text of byte-level tokens', () => {
  it('leaves out a character cut at its end, for 2-, 3- and 4-byte characters', () => {
    for (const char of ['é', '你', '📈']) {
      const all = bytes(`a${char}`);
      for (let cut = 2; cut < all.length; cut++) {
        expect(completeUtf8Length(Uint8Array.from(all.slice(0, cut))), `${char} cut at ${cut}`).toBe(1);
        expect(completeText(all.slice(0, cut))).toBe('a');
      }
      expect(completeText(all)).toBe(`a${char}`);
    }
  });

  it('keeps whole text, drops special tokens, and shows invalid bytes in the middle as U+FFFD', () => {
    expect(completeText([...bytes('利率'), 256, ...bytes(' up')])).toBe('利率 up');
    expect(completeText([0x61, 0xff, 0x62])).toBe('a\uFFFDb');
    // A lone continuation byte at the end is invalid, not incomplete: it stays.
    expect(completeText([0x61, 0x80])).toBe('a\uFFFD');
    expect(completeText([])).toBe('');
  });

  it('joins streamed pieces to the whole text however the bytes are split', () => {
    const all = bytes('债券 yield 📈 上涨');
    for (let cut = 0; cut <= all.length; cut++) {
      const decoder = new TextDecoder('utf-8', { fatal: false });
      let streamed = '';
      for (const byte of all.slice(0, cut)) streamed += decoder.decode(Uint8Array.of(byte), { stream: true });
      // What ChoiceStream does at the end of a choice: held bytes are dropped, not flushed.
      expect(streamed, `cut ${cut}`).toBe(completeText(all.slice(0, cut)));
      expect(streamed).not.toContain('\uFFFD');
    }
  });
});
