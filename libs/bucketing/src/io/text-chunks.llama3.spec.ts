import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ChunkedEncoder, cutText, findCut, type TextCut } from '@xyp/packing';
import { loadTokenizer, type TextTokenizer } from '@xyp/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';

// The cut rules of `@xyp/packing`'s text-chunks.ts on real text: the bundled sample corpus and the
// Llama-3 tokenizer (an I/O library, hence here and not beside text-chunks.ts).
const SAMPLE = resolve(__dirname, '../../../../data/sample/corpus.jsonl');
const docs = readFileSync(SAMPLE, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as { text: string; lang?: string });

/** The sample's texts joined until `chars` characters. */
function corpusText(chars: number, join: string, pick: (doc: { text: string; lang?: string }) => string | null = (doc) => doc.text): string {
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < chars; i++) {
    const text = pick(docs[i % docs.length]);
    if (text === null) continue;
    parts.push(text);
    length += text.length + join.length;
  }
  return parts.join(join);
}

function rulesUsed(text: string, maxChars: number): Record<string, number> {
  const rules: Record<string, number> = {};
  for (let start = 0; start < text.length; ) {
    const cut: TextCut = findCut(text, start, maxChars);
    rules[String(cut.rule)] = (rules[String(cut.rule)] ?? 0) + 1;
    start = cut.end;
  }
  return rules;
}

describe('cutText on the sample corpus', () => {
  it('cuts a whole text into pieces of at most maxChars that join back to it', () => {
    const text = corpusText(50_000, '\n\n');
    const { chunks } = cutText(text, 777);
    expect(chunks.join('')).toBe(text);
    expect(Math.max(...chunks.map((chunk) => chunk.length))).toBeLessThanOrEqual(777);
  });
});

describe('chunked encoding equals whole-text encoding with the Llama-3 tokenizer', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer('llama3');
  });

  async function compare(text: string, chunkChars: number) {
    const [whole] = await tokenizer.encodeBatch([text], { appendId: 128_001 });
    const encoder = new ChunkedEncoder(tokenizer, { chunkChars, batchChars: 1 << 16 });
    const [chunked] = await encoder.encodeBatch([text], { appendId: 128_001 });
    return { whole, chunked, hardCuts: encoder.hardCuts };
  }

  it('on the sample corpus (Chinese and English finance text) joined by blank lines: rule 1', async () => {
    const text = corpusText(400_000, '\n\n');
    const rules = rulesUsed(text, 512);
    expect(rules['1']).toBeGreaterThan(500);
    const { whole, chunked, hardCuts } = await compare(text, 512);
    expect(hardCuts).toBe(0);
    expect(chunked.length).toBe(whole.length);
    expect(chunked).toEqual(whole);
  });

  it('on the same text without any newline: rules 2 and 3 (spaces, CJK punctuation)', async () => {
    const text = corpusText(300_000, ' ', (doc) => doc.text.replace(/\s+/g, ' '));
    const rules = rulesUsed(text, 300);
    expect(rules['1']).toBeUndefined();
    expect(rules['2']).toBeGreaterThan(100);
    expect(rules['3']).toBeGreaterThan(10);
    const { whole, chunked, hardCuts } = await compare(text, 300);
    expect(hardCuts).toBe(0);
    expect(chunked).toEqual(whole);
  });

  it('on Chinese text without spaces or newlines: rule 3', async () => {
    const text = corpusText(200_000, '', (doc) => (doc.lang === 'zh' ? doc.text.replace(/\s+/g, '') : null));
    const rules = rulesUsed(text, 256);
    expect(rules['3']).toBeGreaterThan(100);
    const { whole, chunked, hardCuts } = await compare(text, 256);
    expect(hardCuts).toBe(0);
    expect(chunked).toEqual(whole);
  });

  it('at a hard cut (a stretch with no safe place), the ids can differ: the boundary error this avoids elsewhere', async () => {
    const digits = '7'.repeat(1000);
    const { whole, chunked, hardCuts } = await compare(digits, 500);
    // Digits pre-tokenize in groups of three from the left; a cut at 500 regroups the second half.
    expect(hardCuts).toBe(1);
    expect(chunked).not.toEqual(whole);
  });
});
