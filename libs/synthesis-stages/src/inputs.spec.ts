import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { countInputLines, derivedInputId, parseInputLines, readAnalysisExemplars, readInputs, type InputRecord } from './inputs';
import { jsonl, tempDir } from './spec-support';

const sample = resolve(__dirname, '../../../data/sample/synthesis');

async function all<T>(records: AsyncIterable<InputRecord<T>>): Promise<InputRecord<T>[]> {
  const out: InputRecord<T>[] = [];
  for await (const r of records) out.push(r);
  return out;
}

describe('input readers', () => {
  const made = tempDir('synth-inputs');
  afterAll(async () => (await made).remove());

  it('counts as many input lines as the reader yields records (blank and whitespace-only lines are none)', async () => {
    const { dir } = await made;
    const path = join(dir, 'count.jsonl');
    await writeFile(path, '{"id":"a","category":"funds.knowledge","text":"x"}\n\n   \t\r\nnot json\n\u3000\n{"id":"b","category":"funds.knowledge","text":"y"}');
    expect(await countInputLines(path)).toBe(3);
    expect(await all(readInputs('selfqa', path))).toHaveLength(3);
  });

  it('reads every kind of line, numbers the lines, derives stable ids and resolves category aliases', async () => {
    const { dir } = await made;
    const path = join(dir, 'docs.jsonl');
    await writeFile(
      path,
      jsonl([
        { id: 'd1', category: 'funds.knowledge', text: '基金是一种集合投资方式。' },
        '',
        { category: '基金知识', data: { 名称: '货币基金', 风险: '低' } },
        { id: 7, category: 'Fund Knowledge', text: '指数基金跟踪指数。' },
      ]),
    );
    const records = await all(readInputs('selfqa', path));
    expect(records.map((r) => [r.kind, r.id, r.category, r.line])).toEqual([
      ['input', 'd1', 'funds.knowledge', 1],
      ['input', derivedInputId(3, JSON.stringify({ category: '基金知识', data: { 名称: '货币基金', 风险: '低' } })), 'funds.knowledge', 3],
      ['input', '7', 'funds.knowledge', 4],
    ]);
    expect(records[1].id).toMatch(/^line-3-[0-9a-f]{12}$/);
    // Stable: the same file gives the same ids.
    expect((await all(readInputs('selfqa', path))).map((r) => r.id)).toEqual(records.map((r) => r.id));
    expect(records[1].kind === 'input' && records[1].value).toEqual({ knowledge: { 名称: '货币基金', 风险: '低' } });
  });

  it('turns a malformed line, an unknown category, a missing field and a repeated id into failed records naming the line', async () => {
    const lines = [
      '{"id": "q1", "category": "wealth.retirement", "query": "养老金怎么领？"}',
      '{"id": "q2", "category": "wealth.retirement", "query": ',
      '{"id": "q3", "category": "wealth.retirment", "query": "个人养老金值得开吗？"}',
      '{"id": "q4", "category": "wealth.retirement"}',
      '{"id": "q1", "category": "wealth.retirement", "query": "重复"}',
      '[1, 2]',
      '{"id": "q5", "category": "wealth.retirement", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "退休后社保怎么算？"}, {"role": "assistant", "content": "按缴费年限"}]}',
    ];
    const records = await all(parseInputLines('ensemble', lines, 'queries.jsonl'));
    expect(records.map((r) => (r.kind === 'invalid' ? [r.id, r.reason, r.line] : [r.id, 'ok', r.line]))).toEqual([
      ['q1', 'ok', 1],
      [derivedInputId(2, lines[1]), 'malformed-json', 2],
      ['q3', 'unknown-category', 3],
      ['q4', 'invalid-input', 4],
      ['q1#line-5', 'duplicate-id', 5],
      [derivedInputId(6, lines[5]), 'malformed-json', 6],
      ['q5', 'ok', 7],
    ]);
    const unknown = records[2];
    expect(unknown.kind === 'invalid' && unknown.detail).toMatch(/^queries\.jsonl:3: unknown synthesis category "wealth\.retirment"; did you mean wealth\.retirement/);
    expect(unknown.category).toBe('wealth.retirment');
    expect(records[1].kind === 'invalid' && records[1].detail).toMatch(/^queries\.jsonl:2: not valid JSON/);
    expect(records[3].kind === 'invalid' && records[3].detail).toBe('queries.jsonl:4: query: missing or empty (a query is {id, category, query} or {id, category, messages})');
    expect(records[6].kind === 'input' && records[6].value).toEqual({ query: '退休后社保怎么算？' });
  });

  it('takes an evolve seed from a chat line: the first user turn and the reply after it', async () => {
    const [seed] = await all(parseInputLines('evolve', [JSON.stringify({ category: 'general.reasoning', messages: [{ role: 'user', content: '甲乙丙谁买了债券基金？' }, { role: 'assistant', content: '乙' }] })]));
    expect(seed.kind === 'input' && seed.value).toEqual({ instruction: '甲乙丙谁买了债券基金？', response: '乙' });
  });

  it('streams: records come out while the lines are still being produced', async () => {
    let produced = 0;
    async function* endless() {
      for (;;) {
        produced++;
        yield JSON.stringify({ id: `t${produced}`, category: 'finance.investment-research', topic: `主题${produced}` });
      }
    }
    const taken: string[] = [];
    for await (const r of parseInputLines('analysis', endless())) {
      taken.push(r.id);
      if (taken.length === 3) break;
    }
    expect(taken).toEqual(['t1', 't2', 't3']);
    expect(produced).toBe(3);
  });

  it('reads the sample inputs of data/sample/synthesis without a bad line', async () => {
    for (const [kind, file] of [['selfqa', 'documents.jsonl'], ['evolve', 'seeds.jsonl'], ['analysis', 'topics.jsonl'], ['ensemble', 'queries.jsonl']] as const) {
      const records = await all(readInputs(kind, join(sample, file)));
      expect(records.length).toBeGreaterThan(0);
      expect(records.filter((r) => r.kind === 'invalid')).toEqual([]);
    }
    const exemplars = await readAnalysisExemplars(join(sample, 'exemplars.jsonl'));
    expect(exemplars.length).toBeGreaterThan(0);
  });

  it('fails on a bad exemplar, naming the file and line', async () => {
    await expect(readAnalysisExemplars(['{"id": "e1", "category": "finance.investment-research", "topic": "t", "analysis": "a"}', '{"id": "e2", "category": "finance.investment-research", "analysis": "a"}'], 'ex.jsonl')).rejects.toThrow(
      /^ex\.jsonl:2: topic: missing or empty/,
    );
  });
});
