import { createRng } from '@xyp/random';
import { describe, expect, it } from 'vitest';
import { parseCorpusLine } from './documents';
import { StreamedJsonLine, type StreamedLineResult } from './streamed-line';

/** Streams `line` in pieces cut at the given byte offsets; returns the text and the verdict. */
function stream(line: Uint8Array, cuts: number[], restBytes?: number): { text: string; result: StreamedLineResult } {
  const reader = new StreamedJsonLine(restBytes);
  let text = '';
  let from = 0;
  for (const cut of [...cuts, line.length]) {
    text += reader.write(line.subarray(from, cut));
    from = cut;
  }
  return { text, result: reader.end() };
}

function randomCuts(length: number, seed: number): number[] {
  const rng = createRng(seed);
  const cuts = new Set<number>();
  for (let i = 0; i < Math.min(length, 12); i++) cuts.add(rng.nextInt(length + 1));
  return [...cuts].sort((a, b) => a - b);
}

/** What a buffered line gives, in the streamed reader's terms. */
function buffered(line: Uint8Array): { text: string | null; result: StreamedLineResult } {
  if (line.every((b) => b === 0x20 || b === 0x09 || b === 0x0d)) return { text: null, result: { kind: 'blank' } };
  const parsed = parseCorpusLine(line);
  if (!parsed.ok) return { text: null, result: { kind: 'reject', reason: parsed.reason, detail: '', ...(parsed.id === undefined ? {} : { id: parsed.id }) } };
  return { text: parsed.doc.text, result: { kind: 'document', id: parsed.doc.id, category: parsed.doc.category } };
}

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

const SAME_AS_BUFFERED: [string, Uint8Array][] = [
  ['text first', bytes('{"text":"利率 rose 📈 by 25bp\\n\\nsecond \\"para\\"\\t\\u00e9\\uD83D\\uDE00 end","id":"a1","category":"news"}')],
  ['text last, category before', bytes('{"id":7,"category":"social-media","lang":"zh","text":"茅台今天又跌了7.5%，冲鸭🚀"}')],
  ['nested objects and arrays around', bytes('{"meta":{"text":"not this one","n":[1,{"text":2}]},"id":"m","text":"the real text","category":"x","tags":["a","b"]}')],
  ['escaped key', bytes('{"id":"e","\\u0074ext":"escaped key","category":"x"}')],
  ['whitespace and CRLF', bytes(' \t{ "id" : "w" , "text" : " spaced " , "category" : "c" } \r')],
  ['malformed: trailing garbage', bytes('{"id":"g","text":"abc","category":"x"} x')],
  ['malformed: no closing brace', bytes('{"id":"g","text":"abc","category":"x"')],
  ['malformed: unterminated text', bytes('{"id":"g","text":"abc')],
  ['malformed: control character in text', bytes('{"id":"g","text":"a\tb","category":"x"}')],
  ['malformed: bad escape', bytes('{"id":"g","text":"a\\qb","category":"x"}')],
  ['malformed: bad escape before a multi-byte character', bytes('{"id":"g","text":"a\\é","category":"x"}')],
  ['malformed: bad unicode escape', bytes('{"id":"g","text":"a\\u12G4","category":"x"}')],
  ['missing category', bytes('{"id":"m","text":"abc"}')],
  ['empty category after text', bytes('{"id":"m","text":"abc","category":""}')],
  ['missing text', bytes('{"id":"m","category":"x"}')],
  ['text of the wrong type', bytes('{"id":"m","text":12,"category":"x"}')],
  ['empty text', bytes('{"id":"m","text":"","category":"x"}')],
  ['empty text and no category', bytes('{"id":"m","text":""}')],
  ['whitespace-only text', bytes('{"id":"m","text":" \\n\\t ","category":"x"}')],
  ['whitespace-only text, bad id', bytes('{"id":"","text":"  ","category":"x"}')],
  ['lone high surrogate', bytes('{"id":"s","text":"a\\uD83Db","category":"x"}')],
  ['lone low surrogate', bytes('{"id":"s","text":"a\\uDE00","category":"x"}')],
  ['high surrogate at the end of the text', bytes('{"id":"s","text":"a\\uD83D","category":"x"}')],
  ['lone surrogate and a missing category', bytes('{"id":"s","text":"a\\uD83D"}')],
  ['blank', bytes('  \t \r')],
  ['byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes('{"id":"b","text":"bom","category":"x"}')])],
  ['byte order mark, then blank', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes('  ')])],
  ['half a byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb]), bytes('{"id":"b","text":"bom","category":"x"}')])],
  ['invalid UTF-8 in the text', Buffer.concat([bytes('{"id":"u","text":"ab'), Buffer.from([0xe6, 0x9c]), bytes('","category":"x"}')])],
  ['invalid UTF-8 after a JSON error', Buffer.concat([bytes('{"id":"u","text":"a\\qb","category":"x'), Buffer.from([0xff]), bytes('"}')])],
  ['invalid UTF-8 in another field', Buffer.concat([bytes('{"id":"u","text":"abc","category":"x'), Buffer.from([0xc3, 0x28]), bytes('"}')])],
  ['array', bytes('[1,2,3]')],
  ['a number', bytes('12')],
];

describe('StreamedJsonLine', () => {
  for (const [name, line] of SAME_AS_BUFFERED) {
    it(`gives what a buffered line gives: ${name}`, () => {
      const expected = buffered(line);
      for (const cuts of [[], Array.from({ length: line.length - 1 }, (_, i) => i + 1), randomCuts(line.length, line.length)]) {
        const { text, result } = stream(line, cuts);
        const { detail: _detail, ...verdict } = result as { detail?: string };
        const { detail: _expectedDetail, ...expectedVerdict } = expected.result as { detail?: string };
        expect(verdict).toEqual(expectedVerdict);
        if (expected.text !== null) expect(text).toBe(expected.text);
      }
    });
  }

  it('rejects a second top-level text field, a line over its rest budget, and a line that is not an object, in its own terms', () => {
    expect(stream(bytes('{"id":"d","text":"a","category":"x","text":"b"}'), [5]).result).toMatchObject({ kind: 'reject', reason: 'malformed-json', detail: 'more than one "text" field in a streamed line' });
    expect(stream(bytes(`{"id":"d","text":"a","category":"x","meta":"${'m'.repeat(200)}"}`), [10, 100], 64).result).toMatchObject({ kind: 'reject', reason: 'line-too-long' });
    expect(stream(bytes('["text","x"]'), []).result).toMatchObject({ kind: 'reject', reason: 'not-an-object' });
  });

  it('decodes a long text split anywhere, with escapes and multi-byte characters cut between writes', () => {
    const rng = createRng(3);
    const units = ['利率', ' market', '\n', '"', '\\', '📈', 'é', '\t', '\u2028', 'x'];
    const text = Array.from({ length: 20000 }, () => units[rng.nextInt(units.length)]).join('');
    const line = bytes(JSON.stringify({ id: 'long', text, category: 'finance' }));
    const cuts = Array.from({ length: 300 }, () => rng.nextInt(line.length)).sort((a, b) => a - b);
    const { text: streamed, result } = stream(line, cuts);
    expect(result).toEqual({ kind: 'document', id: 'long', category: 'finance' });
    expect(streamed).toBe(text);
  });
});
