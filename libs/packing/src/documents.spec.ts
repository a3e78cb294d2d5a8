import { describe, expect, it } from 'vitest';
import { parseCorpusLine, rejectRate } from './documents';

const line = (text: string) => new TextEncoder().encode(text);

describe('parseCorpusLine', () => {
  it('accepts a CorpusDocument and normalises a numeric id to a string', () => {
    expect(parseCorpusLine(line('{"id":7,"text":"央行降准。","category":"news","lang":"zh"}'))).toEqual({
      ok: true,
      doc: { id: '7', text: '央行降准。', category: 'news', lang: 'zh' },
    });
  });

  it.each([
    ['{"id":"a","text":"x",', 'malformed-json'],
    ['[1,2]', 'not-an-object'],
    ['"just a string"', 'not-an-object'],
    ['{"id":"a","category":"news"}', 'missing-text'],
    ['{"id":"a","text":"","category":"news"}', 'empty-text'],
    ['{"id":"a","text":"  \\n\\t ","category":"news"}', 'empty-text'],
    ['{"id":"a","text":42,"category":"news"}', 'wrong-type'],
    ['{"id":"a","text":"ok"}', 'missing-field'],
    ['{"id":{"x":1},"text":"ok","category":"news"}', 'wrong-type'],
    ['{"id":"a","text":"ok","category":""}', 'invalid-field'],
    ['{"id":"a","text":"bad \\ud800 surrogate","category":"news"}', 'invalid-utf8'],
  ])('rejects %s as %s', (input, reason) => {
    const result = parseCorpusLine(line(input));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toBe(reason);
  });

  it('rejects bytes that are not UTF-8 and keeps the id when the line had one', () => {
    const bytes = Uint8Array.from([...line('{"id":"a","text":"'), 0xff, 0xfe, ...line('","category":"news"}')]);
    expect(parseCorpusLine(bytes)).toMatchObject({ ok: false, reason: 'invalid-utf8' });
    expect(parseCorpusLine(line('{"id":"d-1","text":7,"category":"news"}'))).toMatchObject({ ok: false, id: 'd-1' });
  });

  it('computes the reject rate over all documents in', () => {
    expect(rejectRate(99, 1)).toBe(0.01);
    expect(rejectRate(0, 0)).toBe(0);
  });
});
