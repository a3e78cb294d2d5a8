import { describe, expect, it } from 'vitest';
import { analysisMessages, checkAnalysisFormat, chooseExemplars, extractHeadings, type AnalysisExemplar } from './analysis';
import { visibleLength } from './text';

const exemplar = (id: string, category: string, analysis = `分析${id}`): AnalysisExemplar => ({ id, category, topic: `题目${id}`, analysis });

describe('chooseExemplars', () => {
  const exemplars = [
    ...Array.from({ length: 8 }, (_, i) => exemplar(`r${i}`, 'securities.research-reports')),
    exemplar('m1', 'macro.event-analysis'),
  ];

  it('draws k exemplars of the same category, the same for the same seed and key whatever the input order', () => {
    const a = chooseExemplars(exemplars, { category: 'securities.research-reports', k: 3, seed: 5, key: 'topic-1' });
    expect(a).toHaveLength(3);
    expect(new Set(a.map((e) => e.id)).size).toBe(3);
    expect(a.every((e) => e.category === 'securities.research-reports')).toBe(true);
    expect(chooseExemplars([...exemplars].reverse(), { category: 'securities.research-reports', k: 3, seed: 5, key: 'topic-1' })).toEqual(a);
    const keys = new Set(Array.from({ length: 10 }, (_, i) => chooseExemplars(exemplars, { category: 'securities.research-reports', k: 3, seed: 5, key: `t${i}` }).map((e) => e.id).join()));
    expect(keys.size).toBeGreaterThan(1);
  });

  it('takes all when the category has fewer than k, skips excluded ids, and throws when it has none', () => {
    expect(chooseExemplars(exemplars, { category: 'macro.event-analysis', k: 3, seed: 1 }).map((e) => e.id)).toEqual(['m1']);
    expect(chooseExemplars(exemplars, { category: 'securities.research-reports', k: 8, seed: 1, excludeIds: ['r0'] }).map((e) => e.id)).not.toContain('r0');
    expect(() => chooseExemplars(exemplars, { category: 'macro.event-analysis', k: 1, seed: 1, excludeIds: ['m1'] })).toThrow(/none of category macro\.event-analysis after the exclusions/);
    expect(() => chooseExemplars(exemplars, { category: 'funds.knowledge', k: 2, seed: 1 })).toThrow(/none of category funds\.knowledge/);
  });

  it('builds the few-shot messages with the prompt version', () => {
    const { promptVersion, messages } = analysisMessages([exemplar('r1', 'c')], '新题目');
    expect(promptVersion).toBe('analysis-fewshot@1');
    expect(messages.map((m) => m.content).slice(1)).toEqual(['题目r1', '分析r1', '新题目']);
  });
});

describe('extractHeadings', () => {
  it('finds markdown, 【】 and 一、 headings, in order, normalized', () => {
    const text = '# 一、核心观点\n正文\n【风险提示】需要关注……\n二、估值分析：PE 15倍\n**三、投资建议**\n普通的一行\n1. 列表项';
    expect(extractHeadings(text)).toEqual([
      { style: 'markdown', text: '核心观点' },
      { style: 'bracket', text: '风险提示' },
      { style: 'numbered', text: '估值分析' },
      { style: 'numbered', text: '投资建议' },
    ]);
  });
});

describe('checkAnalysisFormat', () => {
  const structured = ['## 核心观点\n业绩超预期。\n## 风险提示\n需求回落。\n## 投资建议\n维持买入。', '【核心观点】利润率改善明显。\n【风险提示】原材料涨价。\n【估值】PE 12倍。\n【投资建议】增持。'].map((analysis, i) => exemplar(`e${i}`, 'c', analysis));

  it('requires the headings every exemplar has, in any style', () => {
    const output = '一、核心观点：公司现金流稳健，订单饱满，收入增速有望维持在两成以上。\n二、风险提示：行业竞争加剧。\n三、投资建议：买入。';
    const check = checkAnalysisFormat(output, structured, { minLengthRatio: 0 });
    expect(check).toMatchObject({ ok: true, requiredHeadings: ['核心观点', '风险提示', '投资建议'], missingHeadings: [] });
    const missing = checkAnalysisFormat('## 核心观点\n很好。\n## 投资建议\n买入。', structured, { minLengthRatio: 0 });
    expect(missing).toMatchObject({ ok: false, reason: 'missing-headings', missingHeadings: ['风险提示'] });
  });

  it('requires length ≥ ratio × the exemplars’ median length: equal passes, one less fails', () => {
    const plain = [100, 200, 300].map((n, i) => exemplar(`p${i}`, 'c', '析'.repeat(n))); // median 200; 0.6 × 200 = 120
    expect(checkAnalysisFormat('论'.repeat(120), plain)).toMatchObject({ ok: true, length: 120, minLength: 120 });
    expect(checkAnalysisFormat('论'.repeat(119), plain)).toMatchObject({ ok: false, reason: 'too-short', length: 119 });
    expect(checkAnalysisFormat(' 论 '.repeat(120), plain).length).toBe(120);
    expect(checkAnalysisFormat('论'.repeat(100), plain, { minLengthRatio: 0.5 }).ok).toBe(true);
  });

  it('names an empty output first', () => {
    expect(checkAnalysisFormat('  \n ', structured)).toMatchObject({ ok: false, reason: 'empty' });
    expect(visibleLength('  \n ')).toBe(0);
    expect(() => checkAnalysisFormat('x', [])).toThrow(/need at least one/);
  });
});
