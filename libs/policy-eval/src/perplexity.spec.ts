import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { perplexityByCategory, readPerplexityRecords, type PerplexityRecord } from './perplexity';
import { perplexityReport } from './reports';
import type { PolicyScorer } from './scorer';

/** Every token has log-probability −ln(k) where k depends on the text's first character; a token is a character. */
function fakeScorer(rolling: boolean): PolicyScorer {
  const lp = (text: string) => -Math.log(text.startsWith('x') ? 2 : 8);
  const scorer: PolicyScorer = {
    name: 'fake',
    async logLikelihood(rs) {
      return rs.map((r) => ({ logLikelihood: lp(r.continuation) * r.continuation.length, tokens: r.continuation.length, chars: r.continuation.length, truncated: r.continuation.length > 4 }));
    },
    async conversationLogLikelihood(cs) {
      return cs.map((messages) => {
        const text = messages.filter((m) => m.role === 'assistant').map((m) => m.content).join('');
        return { logLikelihood: lp(text) * text.length, tokens: text.length };
      });
    },
    async generate() {
      return [];
    },
  };
  if (rolling) scorer.logLikelihoodRolling = async (texts) => texts.map((t) => ({ logLikelihood: lp(t) * t.length, tokens: t.length }));
  return scorer;
}

describe('perplexityByCategory', () => {
  const records: PerplexityRecord[] = [
    { text: 'xab', category: 'a' }, // 3 tokens at ln 2
    { text: 'yabcdef', category: 'a' }, // 7 tokens at ln 8
    { messages: [{ role: 'user', content: 'ignored' }, { role: 'assistant', content: 'xy' }], category: 'b' }, // 2 tokens at ln 2
  ];

  it('nll per category is token-weighted, ppl = exp(nll), overall over every token', async () => {
    const r = await perplexityByCategory(records, fakeScorer(true), { chunk: 2 });
    const nllA = (3 * Math.log(2) + 7 * Math.log(8)) / 10;
    expect(r.categories.map((c) => [c.category, c.documents, c.tokens])).toEqual([
      ['a', 2, 10],
      ['b', 1, 2],
    ]);
    expect(r.categories[0].nll).toBeCloseTo(nllA, 12);
    expect(r.categories[0].ppl).toBeCloseTo(Math.exp(nllA), 10);
    expect(r.categories[1].ppl).toBeCloseTo(2, 12);
    const overall = (5 * Math.log(2) + 7 * Math.log(8)) / 12;
    expect(r.overall).toMatchObject({ category: 'overall', documents: 3, tokens: 12 });
    expect(r.overall.nll).toBeCloseTo(overall, 12);
    expect(r.truncated).toBe(0);
    const report = perplexityReport(r);
    expect(report.markdown).toContain('| **overall** | | 3 | 12 |');
  });

  it('without a rolling scorer, texts are continuations of an empty context and truncation is counted', async () => {
    const r = await perplexityByCategory(records, fakeScorer(false));
    expect(r.overall.tokens).toBe(12);
    expect(r.truncated).toBe(1);
  });
});

describe('readPerplexityRecords', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-ppl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('reads corpus and chat lines, rejects malformed ones with their line', () => {
    const path = join(dir, 'mixed.jsonl');
    writeFileSync(
      path,
      [
        '{"id":"1","text":"hello","category":"news"}',
        '{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],"category":"sft"}',
        '',
        '{"text":""}',
        '{"messages":[{"role":"user","content":"q"}]}',
        '{"messages":[{"role":"bot","content":"q"}]}',
        '{"text":"no category"}',
        '[1]',
      ].join('\r\n'),
    );
    const r = readPerplexityRecords(path);
    expect(r.records).toEqual([
      { text: 'hello', category: 'news' },
      { messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], category: 'sft' },
      { text: 'no category', category: 'uncategorized' },
    ]);
    expect(r.rejects).toEqual([
      { file: 'mixed.jsonl', line: 4, reason: 'empty text' },
      { file: 'mixed.jsonl', line: 5, reason: 'no assistant message (nothing to score)' },
      { file: 'mixed.jsonl', line: 6, reason: 'messages[0].role must be system, user or assistant' },
      { file: 'mixed.jsonl', line: 8, reason: 'not a JSON object' },
    ]);
    expect(r.lines).toBe(7);
  });
});
