import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TextReward, TextRewardItem } from '@xyp/contracts';
import { startFakeOpenAi, type FakeOpenAi } from '@xyp/llm';
import { SftItem, type EnsembleThreshold } from '@xyp/synthesis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runEnsemble } from './ensemble';
import { readInputs } from './inputs';
import type { SynthesisOutcome } from './outcomes';
import { directoryOutput } from './output';
import { jsonLines, jsonl, synthesisResponder, tempDir, testGateway } from './spec-support';

/** Registry name → model id → the tag its answers start with. */
const MODELS = [
  ['alpha', 'alpha-7b', '甲'],
  ['beta', 'beta-14b', '乙'],
  ['gamma', 'gamma-70b', '丙'],
] as const;
const TAG = Object.fromEntries(MODELS.map(([, id, tag]) => [id, tag]));

const QUERIES = [
  { id: 'q1', category: 'wealth.asset-allocation', query: '资产如何配置？' },
  { id: 'q2', category: 'wealth.asset-allocation', query: '养老金怎么领？' },
  { id: 'q3', category: 'wealth.asset-allocation', query: '基金定投好吗？' },
  { id: 'q4', category: 'insurance.claims', query: '理赔要多久？' },
];
/** Hand-set reward scores per query and answer tag. */
const SCORES: Record<string, Record<string, number>> = {
  '资产如何配置？': { 甲: 0.9, 乙: 0.5, 丙: 0.2 },
  '养老金怎么领？': { 甲: 0.3, 乙: 0.6, 丙: 0.6 },
  '基金定投好吗？': { 甲: 0.1, 乙: 0.2, 丙: 0 },
  '理赔要多久？': { 甲: 0.1, 乙: 0.05, 丙: 0 },
};
const answerOf = (tag: string, query: string) => `${tag}：${query}的回答`;

let server: FakeOpenAi;
const made = tempDir('synth-ensemble');
let rewardCalls: TextRewardItem[][] = [];
const reward: TextReward = async (batch) => {
  rewardCalls.push([...batch]);
  return batch.map((item) => SCORES[item.prompt][item.response[0]]);
};

beforeAll(async () => {
  server = await startFakeOpenAi({ respond: synthesisResponder({ answer: (model, text) => answerOf(TAG[model], text) }) });
});
afterAll(async () => {
  await server.close();
  await (await made).remove();
});
beforeEach(() => {
  server.setFaults(undefined);
  server.reset();
  rewardCalls = [];
});

async function run(name: string, threshold: EnsembleThreshold) {
  const { dir } = await made;
  const input = join(dir, 'queries.jsonl');
  await writeFile(input, jsonl(QUERIES));
  const gateway = testGateway(server.url, [...MODELS.map(([name, id]) => [name, id] as const), ['fuser', 'delta-fuse']]);
  try {
    const result = await runEnsemble(readInputs('ensemble', input), { models: { ensemble: ['alpha', 'beta', 'gamma'], aggregator: 'fuser' }, selection: { threshold } }, { gateway, reward, output: directoryOutput(join(dir, name)) });
    const items = (await jsonLines(result.files.sft)).map((i) => SftItem.parse(i));
    const outcomes = await jsonLines<SynthesisOutcome>(result.files.outcomes);
    return { ...result, items, outcomes };
  } finally {
    gateway.close();
  }
}

const fusionRequests = () => server.log.filter((r) => r.body.model === 'delta-fuse');

describe('runEnsemble against the fake OpenAI server', () => {
  it('absolute threshold: keeps the answers at or above it, fuses exactly the survivors by score without model names, and fuses nothing for an unresolved query', async () => {
    const { items, outcomes, summary } = await run('absolute', { absolute: 0.5 });
    expect(outcomes.map((o) => [o.id, o.status, o.status === 'kept' ? o.itemIds : o.reason])).toEqual([
      ['q1', 'kept', ['q1/fused']],
      ['q2', 'kept', ['q2/fused']],
      ['q3', 'dropped', 'unresolved'],
      ['q4', 'dropped', 'unresolved'],
    ]);
    expect(outcomes[2]).toMatchObject({ scores: [0.1, 0.2, 0], detail: 'no candidate reached the threshold 0.5 (scores 0.1, 0.2, 0)' });
    // One batched reward call per query, every answer in it.
    expect(rewardCalls.map((b) => b.map((i) => i.response[0]).join(''))).toEqual(['甲乙丙', '甲乙丙', '甲乙丙', '甲乙丙']);
    expect(rewardCalls[0][0]).toEqual({ prompt: '资产如何配置？', response: answerOf('甲', '资产如何配置？'), category: 'wealth.asset-allocation' });

    const fusions = fusionRequests();
    expect(fusions).toHaveLength(2);
    const userTurn = (query: string) => fusions.map((f) => f.body.messages.at(-1)?.content ?? '').find((c) => c.includes(`【用户问题】\n${query}`));
    // q1: 甲 0.9, then 乙 0.5 (equal to the threshold: kept); 丙 0.2 is not shown.
    expect(userTurn('资产如何配置？')).toContain(`【候选回答】\n候选回答1：\n${answerOf('甲', '资产如何配置？')}\n\n候选回答2：\n${answerOf('乙', '资产如何配置？')}\n\n请综合`);
    // q2: 乙 and 丙 tie at 0.6, in ensemble order.
    expect(userTurn('养老金怎么领？')).toContain(`候选回答1：\n${answerOf('乙', '养老金怎么领？')}\n\n候选回答2：\n${answerOf('丙', '养老金怎么领？')}\n\n请综合`);
    for (const f of fusions) {
      const text = f.body.messages.map((m) => m.content).join('\n');
      expect(text).not.toContain('候选回答3');
      for (const [name, id] of MODELS) {
        expect(text).not.toContain(name);
        expect(text).not.toContain(id);
      }
    }
    expect(fusions.some((f) => f.body.messages.some((m) => m.content.includes('基金定投好吗？')))).toBe(false);

    expect(items[0].provenance).toMatchObject({
      generator: 'ensemble',
      models: ['alpha', 'beta', 'fuser'],
      promptVersion: 'fusion@1',
      fusionPromptVersion: 'fusion@1',
      sourceId: 'q1',
      threshold: 0.5,
      candidates: [
        { model: 'alpha', score: 0.9, kept: true },
        { model: 'beta', score: 0.5, kept: true },
        { model: 'gamma', score: 0.2, kept: false, reason: 'below-threshold' },
      ],
    });
    expect(items[0].messages).toEqual([
      { role: 'user', content: '资产如何配置？' },
      { role: 'assistant', content: expect.stringMatching(/^综合回答：/) },
    ]);
    expect(summary.stats).toMatchObject({ candidates: 12, 'candidates.kept': 4, 'candidates.dropped.below-threshold': 8, fusions: 2, unresolved: 2 });
  });

  it('quantile threshold: per category, the type-7 quantile of its scores', async () => {
    const { outcomes, items } = await run('quantile', { quantile: 0.75 });
    // wealth: sorted [0, .1, .2, .2, .3, .5, .6, .6, .9], h = 8 · 0.75 = 6 → 0.6. insurance: [0, .05, .1], h = 1.5 → 0.075.
    expect(outcomes.map((o) => [o.id, o.status])).toEqual([
      ['q1', 'kept'],
      ['q2', 'kept'],
      ['q3', 'dropped'],
      ['q4', 'kept'],
    ]);
    const kept = (id: string) => items.find((i) => i.id === id)?.provenance.candidates?.filter((c) => c.kept).map((c) => c.model);
    expect(kept('q1/fused')).toEqual(['alpha']);
    expect(kept('q2/fused')).toEqual(['beta', 'gamma']);
    expect(kept('q4/fused')).toEqual(['alpha']);
    expect(items.map((i) => i.provenance['threshold'])).toEqual([0.6, 0.6, 0.075].map((t) => expect.closeTo(t, 12)));
    expect(fusionRequests()).toHaveLength(3);
  });

  it('a model that refuses a request for good loses that candidate only (score null, call-failed); the others go on', async () => {
    server.setFaults((_, body) => (body.model === 'beta-14b' && body.messages.at(-1)?.content === '资产如何配置？' ? { kind: 'status', status: 400, body: { error: { message: 'content filter' } } } : undefined));
    const { items, outcomes } = await run('refusal', { absolute: 0.5 });
    expect(outcomes.map((o) => o.status)).toEqual(['kept', 'kept', 'dropped', 'dropped']);
    expect(items[0].provenance.candidates).toEqual([
      { model: 'alpha', score: 0.9, kept: true },
      { model: 'beta', score: null, kept: false, reason: 'call-failed' },
      { model: 'gamma', score: 0.2, kept: false, reason: 'below-threshold' },
    ]);
    expect(rewardCalls[0].map((i) => i.response[0])).toEqual(['甲', '丙']);
    // A 400 is not retried.
    expect(server.log.filter((r) => r.body.model === 'beta-14b' && r.fault)).toHaveLength(1);
  });
});
