import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startFakeOpenAi, type FakeOpenAi } from '@xyp/llm';
import { SftItem } from '@xyp/synthesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAnalysis } from './analysis';
import { readAnalysisExemplars, readInputs } from './inputs';
import type { SynthesisOutcome } from './outcomes';
import { directoryOutput } from './output';
import { jsonLines, jsonl, synthesisResponder, tempDir, testGateway } from './spec-support';

const body = (topic: string) => `【背景概述】\n${topic}的行业背景与近期变化。\n【核心分析】\n从供需、价格与竞争格局三方面分析${topic}。\n【风险提示】\n政策变化与需求不及预期。`;
const EXEMPLARS = [
  { id: 'ex-1', category: 'finance.investment-research', topic: '评估光伏组件行业的投资机会。', analysis: body('光伏组件') },
  { id: 'ex-2', category: 'finance.investment-research', topic: '评估储能行业的投资机会。', analysis: body('储能') },
  { id: 'ex-3', category: 'macro.event-analysis', topic: '解读降准的影响。', analysis: '【事件】\n央行降准。\n【影响】\n流动性改善。' },
];
const TOPICS = [
  { id: 't1', category: 'finance.investment-research', topic: '分析动力电池行业的投资逻辑。' },
  { id: 't2', category: 'finance.investment-research', topic: 'SHORT 分析风电行业。' },
  { id: 't3', category: 'corporate.financial-statements', topic: '分析一家公司的现金流量表。' },
  { id: 't4', category: '投研应用能力', topic: '解读半导体设备研报。', material: '报告认为国产化率将提升。' },
];

let server: FakeOpenAi;
const made = tempDir('synth-analysis');
beforeAll(async () => {
  server = await startFakeOpenAi({ respond: synthesisResponder() });
});
afterAll(async () => {
  await server.close();
  await (await made).remove();
});

describe('runAnalysis against the fake OpenAI server', () => {
  it('writes analyses in the exemplars format, drops a short one, fails a topic without exemplars of its category', async () => {
    const { dir } = await made;
    await writeFile(join(dir, 'topics.jsonl'), jsonl(TOPICS));
    await writeFile(join(dir, 'exemplars.jsonl'), jsonl(EXEMPLARS));
    const exemplars = await readAnalysisExemplars(join(dir, 'exemplars.jsonl'));
    const gateway = testGateway(server.url, [['analyst', 'analyst-model']]);
    try {
      const { files, summary } = await runAnalysis(readInputs('analysis', join(dir, 'topics.jsonl')), { models: { generator: 'analyst' }, exemplarsPerTopic: 2 }, { gateway, exemplars, output: directoryOutput(join(dir, 'out')) });
      const items = (await jsonLines(files.sft)).map((i) => SftItem.parse(i));
      const outcomes = await jsonLines<SynthesisOutcome>(files.outcomes);
      expect(outcomes.map((o) => [o.id, o.status, o.status === 'kept' ? o.itemIds : o.reason])).toEqual([
        ['t1', 'kept', ['t1/analysis']],
        ['t2', 'dropped', 'too-short'],
        ['t3', 'failed', 'no-exemplars'],
        ['t4', 'kept', ['t4/analysis']],
      ]);
      expect(outcomes[2]).toMatchObject({ detail: 'exemplars: none of category corporate.financial-statements' });
      expect(items[0].provenance).toEqual({ generator: 'expert-seeded', models: ['analyst'], promptVersion: 'analysis-fewshot@1', sourceId: 't1', exemplarIds: expect.arrayContaining(['ex-1', 'ex-2']) });
      expect(items[1].messages[0].content).toBe('解读半导体设备研报。\n\n【材料】\n报告认为国产化率将提升。');
      expect(items[1].messages[1].content).toContain('【风险提示】');
      // Two exemplars as few-shot turns, then the topic: system + 2 × (user, assistant) + user.
      expect(server.log[0].body.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user']);
      expect(server.requests).toBe(3);
      expect(summary.accounting.byCategory['finance.investment-research']).toEqual({ inputs: 3, kept: 2, dropped: 1, failed: 0 });
    } finally {
      gateway.close();
    }
  });
});
