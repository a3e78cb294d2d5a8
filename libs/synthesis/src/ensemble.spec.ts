import { describe, expect, it } from 'vitest';
import { ensembleThresholds, fusionMessages, selectSurvivors, type EnsembleQuery } from './ensemble';
import { quantileType7 } from '@xyp/stats';

const query = (id: string, category: string, scores: number[], answers?: string[]): EnsembleQuery => ({
  id,
  category,
  query: `问题${id}`,
  candidates: scores.map((score, i) => ({ model: `model-${String.fromCharCode(97 + i)}`, answer: answers?.[i] ?? `回答${id}-${i}`, score })),
});

describe('quantile thresholds', () => {
  it('are type-7 quantiles of every finite score of the category (hand-computed)', () => {
    expect(quantileType7([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantileType7([1, 2, 3, 4], 0.25)).toBe(1.75); // h = 3·0.25 = 0.75 → 1 + 0.75·(2 − 1)
    expect(quantileType7([1, 2, 3, 4], 0.9)).toBeCloseTo(3.7, 12); // h = 2.7 → 3 + 0.7·1
    expect(quantileType7([1, 2, 3, 4], 0)).toBe(1);
    expect(quantileType7([1, 2, 3, 4], 1)).toBe(4);
    const queries = [query('q1', 'A', [1, 4]), query('q2', 'A', [2, 3, NaN]), query('q3', 'B', [10, 20])];
    expect(ensembleThresholds(queries, { quantile: 0.25 })).toEqual({ A: 1.75, B: 12.5 });
    expect(ensembleThresholds(queries, { absolute: 0.3 })).toEqual({ A: 0.3, B: 0.3 });
    expect(() => ensembleThresholds([query('q', 'C', [NaN])], { quantile: 0.5 })).toThrow(/category C has no finite score/);
  });
});

describe('selectSurvivors', () => {
  it('keeps a score equal to the absolute threshold and drops one just below', () => {
    const { selections } = selectSurvivors([query('q1', 'A', [0.5, 0.4999, 0.7])], { threshold: { absolute: 0.5 } });
    expect(selections[0].decisions).toEqual([
      { model: 'model-a', score: 0.5, kept: true },
      { model: 'model-b', score: 0.4999, kept: false, reason: 'below-threshold' },
      { model: 'model-c', score: 0.7, kept: true },
    ]);
    expect(selections[0].status === 'resolved' && selections[0].survivors.map((s) => s.model)).toEqual(['model-c', 'model-a']);
  });

  it('keeps the candidate whose score is the quantile threshold itself', () => {
    // Category A scores 1, 2, 3: the median is 2 → 2 and 3 survive, 1 does not.
    const { selections, thresholds } = selectSurvivors([query('q1', 'A', [1, 3]), query('q2', 'A', [2])], { threshold: { quantile: 0.5 } });
    expect(thresholds).toEqual({ A: 2 });
    expect(selections.map((s) => s.decisions.map((d) => d.kept))).toEqual([[false, true], [true]]);
  });

  it('names invalid scores and empty answers, and caps the survivors (ties in input order)', () => {
    const q = query('q1', 'A', [NaN, 0.9, 0.8, 0.9, 0.95], ['x', '', 'y', 'z', 'w']);
    const { selections } = selectSurvivors([q], { threshold: { absolute: 0 }, maxSurvivors: 2 });
    const s = selections[0];
    expect(s.decisions.map((d) => d.reason)).toEqual(['invalid-score', 'empty-answer', 'beyond-max-survivors', undefined, undefined]);
    expect(s.status === 'resolved' && s.survivors.map((c) => [c.model, c.index])).toEqual([
      ['model-e', 4],
      ['model-d', 3],
    ]);
    const tie = selectSurvivors([query('t', 'A', [0.9, 0.9, 0.9])], { threshold: { absolute: 0 }, maxSurvivors: 2 }).selections[0];
    expect(tie.status === 'resolved' && tie.survivors.map((c) => c.model)).toEqual(['model-a', 'model-b']);
  });

  it('leaves a query with no survivor unresolved, with its scores', () => {
    const { selections } = selectSurvivors([query('q1', 'A', [0.1, 0.2])], { threshold: { absolute: 0.5 } });
    expect(selections[0]).toMatchObject({ status: 'unresolved', scores: [0.1, 0.2], threshold: 0.5 });
    expect(() => fusionMessages(selections[0])).toThrow(/unresolved/);
  });

  it('rejects a repeated query id and a bad threshold, naming the field', () => {
    expect(() => selectSurvivors([query('q', 'A', [1]), query('q', 'A', [1])], { threshold: { absolute: 0 } })).toThrow(/queries\[1\]\.id: q appears twice/);
    expect(() => selectSurvivors([], { threshold: { quantile: 1.5 } })).toThrow(/^ensemble\.threshold/);
  });
});

describe('fusionMessages', () => {
  const q: EnsembleQuery = {
    id: 'q1',
    category: 'wealth.asset-allocation',
    query: '30岁、月入两万，怎样做资产配置？',
    candidates: [
      { model: 'qwen2-72b-instruct', answer: '回答乙：建议先配置应急资金。', score: 0.6 },
      { model: 'gpt-4o', answer: '回答甲：按风险偏好分层配置。', score: 0.9 },
      { model: 'xuanyuan-70b', answer: '回答丙：全部买股票。', score: 0.1 },
      { model: 'deepseek-v2', answer: '回答丁：配置保险与指数基金。', score: 0.75 },
    ],
  };
  const selection = selectSurvivors([q], { threshold: { absolute: 0.5 } }).selections[0];
  const { promptVersion, messages } = fusionMessages(selection);
  const user = messages[messages.length - 1].content;

  it('shows the query, then the survivors numbered by score descending', () => {
    expect(promptVersion).toBe('fusion@1');
    expect(messages.map((m) => m.role)).toEqual(['system', 'user']);
    const at = (s: string) => user.indexOf(s);
    expect(at('30岁、月入两万')).toBeGreaterThanOrEqual(0);
    expect(at('30岁、月入两万')).toBeLessThan(at('候选回答1：'));
    expect(user).toContain('候选回答1：\n回答甲：按风险偏好分层配置。');
    expect(user).toContain('候选回答2：\n回答丁：配置保险与指数基金。');
    expect(user).toContain('候选回答3：\n回答乙：建议先配置应急资金。');
    expect(at('候选回答1：')).toBeLessThan(at('候选回答2：'));
    expect(at('候选回答2：')).toBeLessThan(at('候选回答3：'));
    expect(user).not.toContain('候选回答4');
    expect(user).not.toContain('全部买股票');
  });

  it('asks for one better answer, critical evaluation, no copying and no mention of the candidates', () => {
    const system = messages[0].content;
    expect(system).toContain('综合成一个高质量的回答');
    expect(system).toContain('批判性地评估');
    expect(system).toContain('不应简单复制');
    expect(system).toContain('不要提及候选回答');
  });

  it('leaks no model name', () => {
    const all = messages.map((m) => m.content).join('\n').toLowerCase();
    for (const c of q.candidates) expect(all).not.toContain(c.model.toLowerCase());
    for (const fragment of ['qwen', 'gpt', 'xuanyuan', 'deepseek', 'model']) expect(all).not.toContain(fragment);
  });
});
