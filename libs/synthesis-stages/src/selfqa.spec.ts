import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startFakeOpenAi, type FakeOpenAi } from '@xyp/llm';
import { SftItem } from '@xyp/synthesis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readInputs } from './inputs';
import type { SynthesisOutcome } from './outcomes';
import { directoryOutput } from './output';
import { runSelfQa } from './selfqa';
import { jsonLines, jsonl, synthesisResponder, tempDir, testGateway } from './spec-support';

const DOCS = [
  { id: 'd-text', category: 'wealth.products', text: '净值型理财产品不承诺保本保收益。业绩比较基准不等于预期收益率。投资者应关注产品的风险等级。' },
  { id: 'd-data', category: '基金知识', data: { 名称: '货币市场基金', 特点: '货币市场基金流动性强且风险较低', 费率: '货币基金通常不收取申购赎回费' } },
  '{"id": "d-broken", "category": "funds.knowledge", "text": ',
  { id: 'd-refer', category: 'tax.policy', text: 'REFER 个人养老金每年缴费上限为12000元。个人养老金资金账户实行封闭运行。' },
  { id: 'd-unknown', category: '理财产品知道', text: '这一行的类别不存在于分类体系。' },
  { id: 'd-repair', category: 'funds.knowledge', text: 'REPAIR 指数基金以跟踪标的指数为目标。指数基金的管理费率通常较低。' },
  { id: 'd-bad', category: 'funds.knowledge', text: 'BAD-JSON 封闭式基金在封闭期内不能赎回。' },
];

let server: FakeOpenAi;
const made = tempDir('synth-selfqa');

beforeAll(async () => {
  server = await startFakeOpenAi({ respond: synthesisResponder() });
});
afterAll(async () => {
  await server.close();
  await (await made).remove();
});
beforeEach(() => {
  server.setFaults(undefined);
  server.reset();
});

async function run(name: string, jsonSchema = false) {
  const { dir } = await made;
  const input = join(dir, 'docs.jsonl');
  await writeFile(input, jsonl(DOCS));
  const gateway = testGateway(server.url, [['writer', 'fake-writer']]);
  try {
    const out = join(dir, name);
    const result = await runSelfQa(readInputs('selfqa', input), { models: { generator: 'writer' }, instructionsPerDocument: 3, chunkSize: 2, concurrency: 2, jsonSchema }, { gateway, output: directoryOutput(out) });
    return { ...result, out, sft: await readFile(result.files.sft, 'utf8') };
  } finally {
    gateway.close();
  }
}

describe('runSelfQa against the fake OpenAI server', () => {
  it('keeps grounded pairs, drops a document whose answers point at the text, and accounts for every line once', async () => {
    const { summary, files } = await run('clean');
    const items = (await jsonLines(files.sft)).map((i) => SftItem.parse(i));
    const outcomes = await jsonLines<SynthesisOutcome>(files.outcomes);
    expect(outcomes.map((o) => [o.id, o.status, o.status === 'kept' ? o.itemIds.length : o.reason])).toEqual([
      ['d-text', 'kept', 3],
      ['d-data', 'kept', 3],
      [expect.stringMatching(/^line-3-/), 'failed', 'malformed-json'],
      ['d-refer', 'dropped', 'refers-to-document'],
      ['d-unknown', 'failed', 'unknown-category'],
      ['d-repair', 'kept', 2],
      ['d-bad', 'failed', 'unparsed-instructions'],
    ]);
    expect(outcomes[4]).toMatchObject({ category: '理财产品知道', detail: expect.stringContaining('unknown synthesis category "理财产品知道"; did you mean') });
    expect(items.map((i) => i.id)).toEqual(['d-text/qa-1', 'd-text/qa-2', 'd-text/qa-3', 'd-data/qa-1', 'd-data/qa-2', 'd-data/qa-3', 'd-repair/qa-1', 'd-repair/qa-2']);
    expect(items[0]).toEqual({
      id: 'd-text/qa-1',
      messages: [
        { role: 'user', content: '关于“净值型理财产品不”，有哪些要点？' },
        { role: 'assistant', content: '净值型理财产品不承诺保本保收益。' },
      ],
      category: 'wealth.products',
      provenance: { generator: 'selfqa', models: ['writer'], promptVersion: 'selfqa-instructions@1', promptVersions: ['selfqa-answer@1', 'selfqa-json-output@1'], sourceId: 'd-text', supportScore: 1 },
    });
    // The structured document was rendered to `字段: 值` lines for the prompt.
    expect(items[3].messages[1].content).toBe('名称: 货币市场基金。');
    expect(summary.accounting).toMatchObject({ inputs: 7, kept: 3, dropped: 1, failed: 3, droppedByReason: { 'refers-to-document': 1 }, failedByReason: { 'malformed-json': 1, 'unknown-category': 1, 'unparsed-instructions': 1 } });
    expect(summary.stats).toMatchObject({ instructions: 10, 'pairs.kept': 8, 'pairs.dropped.refers-to-document': 2, 'instructions.repairs': 2 });
    expect(summary.items).toBe(8);
    expect(summary.gateway['writer']).toMatchObject({ answered: server.requests, cacheHits: 0, failed: 0 });
    // The bad documents were re-asked once with the repair turn; no response_format unless asked for.
    const asked = server.log.filter((r) => r.body.messages.at(-1)?.content.includes('Your previous reply could not be used'));
    expect(asked).toHaveLength(2);
    expect(server.log.every((r) => r.body.response_format === undefined)).toBe(true);
  });

  it('rides out 429 with retry-after, 500, a reset connection and a malformed structured reply: the same dataset, nothing lost', async () => {
    const clean = await run('reference');
    server.reset();
    const faulted = new Set<number>();
    server.setFaults((index, body) => {
      const last = body.messages.at(-1)?.content ?? '';
      if (index === 0) return { kind: 'status', status: 429, retryAfter: '0.05' };
      if (index === 2) return { kind: 'status', status: 500 };
      if (index === 4) return { kind: 'reset' };
      if (!faulted.has(-1) && last.includes('业绩比较基准') && last.includes('请根据以上背景知识，生成')) {
        faulted.add(-1);
        return { kind: 'content', content: '{"instructions": ["未闭合' };
      }
      return undefined;
    });
    const { summary, sft } = await run('faulted', true);
    expect(sft).toBe(clean.sft);
    expect(summary.accounting).toEqual(clean.summary.accounting);
    expect(summary.stats['instructions.repairs']).toBe(3);
    expect(summary.gateway['writer'].retries).toBe(3);
    expect(server.log.map((r) => r.fault).filter(Boolean)).toEqual(['status', 'status', 'reset', 'content']);
    const instructionSteps = server.log.filter((r) => r.body.messages[1]?.content.includes('请根据以上背景知识，生成'));
    expect(instructionSteps.length).toBeGreaterThan(5);
    expect(instructionSteps.every((r) => (r.body.response_format as { type?: string } | undefined)?.type === 'json_schema')).toBe(true);
  });
});
