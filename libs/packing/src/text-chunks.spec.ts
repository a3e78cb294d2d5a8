import { describe, expect, it } from 'vitest';
import { cutText, findCut } from './text-chunks';

describe('findCut', () => {
  it('prefers a newline followed by a non-space, then a letter before a space or a CJK mark, then a hard cut', () => {
    expect(findCut('aaaaaa\nbb cccc', 0, 10)).toEqual({ end: 7, rule: 1 });
    expect(findCut('aaaa\n bbb cccc', 0, 10)).toEqual({ end: 9, rule: 2 });
    expect(findCut('中国人民银行，下调存款准备金率', 0, 10)).toEqual({ end: 6, rule: 3 });
    expect(findCut('1234567890123', 0, 10)).toEqual({ end: 10, rule: 'hard' });
    expect(findCut('short', 0, 10)).toEqual({ end: 5, rule: 'rest' });
  });

  it('never cuts a surrogate pair, nor before a combining mark after a newline', () => {
    const emoji = '📈'.repeat(20);
    for (let max = 2; max < 12; max++) {
      const { chunks } = cutText(emoji, max);
      expect(chunks.join('')).toBe(emoji);
      for (const chunk of chunks) expect(chunk.length % 2).toBe(0);
    }
    expect(findCut('abcdefg\n\u0301xyz', 0, 9).rule).toBe('hard');
    // A letter outside the BMP before the space counts as a letter.
    expect(findCut('aaaa𝐀 bbbbbbbb', 0, 10)).toEqual({ end: 6, rule: 2 });
  });
});
