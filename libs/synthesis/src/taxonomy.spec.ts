import { SUBCATEGORIES } from '@xyp/contracts';
import { describe, expect, it } from 'vitest';
import { BOARDS, TAXONOMY, UnknownCategoryError, categoriesFor, categoryById, categoryByName, methodFor, resolveCategory } from './taxonomy';

describe('taxonomy', () => {
  it('has 30 to 40 fine finance categories under the seed boards, plus every seed subcategory', () => {
    const fine = TAXONOMY.filter((c) => c.board !== 'finance' && c.board !== 'general');
    expect(fine.length).toBeGreaterThanOrEqual(30);
    expect(fine.length).toBeLessThanOrEqual(40);
    expect(fine.every((c) => c.kind === 'finance')).toBe(true);
    const boards = new Set<string | undefined>(fine.map((c) => BOARDS.find((b) => b.id === c.board)?.name));
    for (const name of ['理财', '保险', '信贷', '证券', '基金', '银行', '税务', '合规', '期货', '宏观经济', '公司金融', '金融科技']) expect(boards.has(name)).toBe(true);
    for (const s of SUBCATEGORIES) expect(categoryById(s.id)).toMatchObject({ name: s.name, kind: s.set, evalSubcategory: s.id });
    expect(TAXONOMY.length).toBe(fine.length + SUBCATEGORIES.length);
  });

  it('gives every category a unique ascii slug id, a unique name and a seed subcategory to roll up to', () => {
    expect(new Set(TAXONOMY.map((c) => c.id)).size).toBe(TAXONOMY.length);
    expect(new Set(TAXONOMY.map((c) => c.name)).size).toBe(TAXONOMY.length);
    const subcategoryIds = new Set(SUBCATEGORIES.map((s) => s.id));
    for (const c of TAXONOMY) {
      expect(c.id).toMatch(/^[a-z]+\.[a-z]+(?:-[a-z]+)*$/);
      expect(subcategoryIds.has(c.evalSubcategory)).toBe(true);
    }
  });

  it('assigns the seed’s method per kind of category', () => {
    expect(methodFor('金融百科问答')).toBe('selfqa');
    expect(methodFor('funds.knowledge')).toBe('selfqa');
    expect(methodFor('金融领域计算')).toBe('evol-instruct');
    expect(methodFor('指令遵循')).toBe('evol-instruct');
    expect(methodFor('推理')).toBe('evol-instruct');
    for (const name of ['投研应用能力', '金融事件解析', '金融业务解析', '研报解读']) expect(methodFor(name)).toBe('expert-seeded');
    expect(methodFor('日常交流')).toBe('ensemble');
    expect(methodFor('wealth.asset-allocation')).toBe('ensemble');
    for (const method of ['selfqa', 'evol-instruct', 'expert-seeded', 'ensemble'] as const) expect(categoriesFor(method).length).toBeGreaterThan(3);
  });

  it('resolves an id, a Chinese name or an English label, ignoring case and surrounding space', () => {
    expect(resolveCategory('finance.investment-research').name).toBe('投研应用能力');
    expect(resolveCategory(' 投研应用能力 ').id).toBe('finance.investment-research');
    expect(resolveCategory('Investment Research').id).toBe('finance.investment-research');
    expect(resolveCategory('FUNDS.KNOWLEDGE').id).toBe('funds.knowledge');
    expect(categoryByName('基金知识')?.id).toBe('funds.knowledge');
    expect(categoryByName('不存在')).toBeUndefined();
  });

  it('throws naming an unknown category and the close ones', () => {
    let error: unknown;
    try {
      resolveCategory('投研能力');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnknownCategoryError);
    const unknown = error as UnknownCategoryError;
    expect(unknown.input).toBe('投研能力');
    expect(unknown.suggestions.map((c) => c.id)).toContain('finance.investment-research');
    expect(unknown.message).toContain('"投研能力"');
    expect(unknown.message).toContain('finance.investment-research (投研应用能力)');
    expect(() => resolveCategory('funds.knowlege')).toThrow(/did you mean funds\.knowledge/);
  });

  it('lists every valid id when nothing is close', () => {
    expect(() => resolveCategory('qqqqqqqqqqqqqqqq')).toThrow(/valid ids: wealth\.products, .*general\.calculation$/);
  });
});
