import { describe, expect, it } from 'vitest';
import { DuplicateFilter } from './dedup';
import {
  documentReference,
  filterSelfQa,
  parseAnswer,
  parseInstructions,
  renderKnowledge,
  selfQaAnswerMessages,
  selfQaInstructionMessages,
  supportScore,
  unsupportedNumbers,
  type SelfQaPair,
} from './selfqa';

describe('renderKnowledge', () => {
  it('turns objects, nested objects, lists and tables into readable 字段: 值 lines', () => {
    const text = renderKnowledge({
      产品: '货币基金',
      费率: { 管理费: '0.3%', 托管费: '0.1%' },
      特点: ['流动性高', '风险低'],
      收益: { columns: ['年份', '七日年化'], rows: [[2022, '2.1%'], [2023, '1.9%']] },
      可随时赎回: true,
      备注: null,
      说明: '',
    });
    expect(text).toBe(
      [
        '产品: 货币基金',
        '费率:',
        '  管理费: 0.3%',
        '  托管费: 0.1%',
        '特点:',
        '  - 流动性高',
        '  - 风险低',
        '收益:',
        '  1.',
        '    年份: 2022',
        '    七日年化: 2.1%',
        '  2.',
        '    年份: 2023',
        '    七日年化: 1.9%',
        '可随时赎回: 是',
      ].join('\n'),
    );
  });

  it('keeps text as it is and renders an array of rows as numbered blocks', () => {
    expect(renderKnowledge('  货币基金是一种开放式基金。 ')).toBe('货币基金是一种开放式基金。');
    expect(renderKnowledge([{ 险种: '重疾险', 等待期: '90天' }, { 险种: '医疗险', 等待期: '30天' }])).toBe('1.\n  险种: 重疾险\n  等待期: 90天\n2.\n  险种: 医疗险\n  等待期: 30天');
  });

  it('renders the document into both SelfQA prompts', () => {
    const doc = { id: 'd1', category: 'funds.knowledge', knowledge: { 名称: '货币基金' } };
    expect(selfQaInstructionMessages(doc, 3).messages[1].content).toContain('名称: 货币基金');
    expect(selfQaAnswerMessages(doc, '货币基金是什么？')).toMatchObject({ promptVersion: 'selfqa-answer@1' });
  });
});

describe('parseInstructions', () => {
  it('reads a numbered list, skipping the preamble, removing labels and empty items, joining continuation lines', () => {
    const out = parseInstructions('好的，以下是3个问题：\n1. 问题：什么是货币基金？\n2、问题: 货币基金的\n主要风险是什么？\n3. 问题：\n(4) Question: What is an ETF?\n');
    expect(out).toEqual(['什么是货币基金？', '货币基金的\n主要风险是什么？', 'What is an ETF?']);
  });

  it('reads a JSON array of strings or objects, fenced or not', () => {
    expect(parseInstructions('```json\n["什么是国债逆回购？", "  ", {"question": "逆回购的风险？"}]\n```')).toEqual(['什么是国债逆回购？', '逆回购的风险？']);
    expect(parseInstructions('[{"instruction": "A"}, {"问题": "B"}, 3]')).toEqual(['A', 'B']);
  });

  it('reads bullets, and plain lines when there is no marker', () => {
    expect(parseInstructions('- 什么是LPR？\n* LPR多久调整一次？\n• 房贷利率与LPR的关系？')).toEqual(['什么是LPR？', 'LPR多久调整一次？', '房贷利率与LPR的关系？']);
    expect(parseInstructions('什么是LPR？\n\n  LPR多久调整一次？  \n')).toEqual(['什么是LPR？', 'LPR多久调整一次？']);
  });

  it('does not read a leading decimal as a list marker', () => {
    expect(parseInstructions('1.5%的费率高吗？')).toEqual(['1.5%的费率高吗？']);
  });
});

describe('parseAnswer', () => {
  it('drops an echoed question and the answer label', () => {
    expect(parseAnswer('问题：什么是LPR？\n答案：LPR是贷款市场报价利率。')).toBe('LPR是贷款市场报价利率。');
    expect(parseAnswer('Answer: LPR is the loan prime rate.')).toBe('LPR is the loan prime rate.');
    expect(parseAnswer('  LPR是贷款市场报价利率。 ')).toBe('LPR是贷款市场报价利率。');
  });
});

describe('documentReference', () => {
  it.each([
    ['根据上文，货币基金的风险是什么？', 'zh-according-to'],
    ['根据文本内容回答', 'zh-according-to'],
    ['文中提到的基金有哪些？', 'zh-in-the-text'],
    ['材料中的数据说明了什么？', 'zh-in-the-text'],
    ['该文档介绍了哪种产品？', 'zh-this-document'],
    ['本段主要讲了什么？', 'zh-this-document'],
    ['上述文章的观点是什么？', 'zh-above'],
    ['What does the text say about ETFs?', 'en-the-text'],
    ['Summarize the passage.', 'en-the-text'],
    ['According to the document, what is LPR?', 'en-the-text'],
    ['as mentioned above, the fee is low', 'en-above'],
  ])('flags %s', (text, id) => {
    expect(documentReference(text)).toBe(id);
  });

  it.each(['货币基金的主要风险有哪些？', '以上内容仅供参考，不构成投资建议。', '根据以上分析，建议分散投资。', '贷款申请材料中需要包括哪些文件？', 'What documents does a mortgage application need?', 'In the context of rate cuts, what happens to bonds?'])(
    'does not flag %s',
    (text) => {
      expect(documentReference(text)).toBeUndefined();
    },
  );
});

describe('supportScore and numbers', () => {
  it('is the share of the answer’s bigrams and words found in the document (hand-computed)', () => {
    // answer bigrams 甲乙 乙丙 丙戊 戊己; the document has 甲乙 乙丙 → 2/4
    expect(supportScore('甲乙丙戊己', '甲乙丙丁')).toBe(0.5);
    // words etf, fee, high; the document has etf, fee → 2/3
    expect(supportScore('ETF fee high', 'the etf fee is 0.5')).toBeCloseTo(2 / 3, 12);
    // a one-character run is one token: 甲 (found), 乙 (not) → 1/2
    expect(supportScore('甲, 乙', '甲丙')).toBe(0.5);
    expect(supportScore('', '甲乙')).toBe(0);
  });

  it('needs every number of the answer in the document, in canonical form, list markers aside', () => {
    const doc = '管理费率为3.5%，起购金额1000元，2023年05月成立。';
    expect(unsupportedNumbers('管理费率3.50%，起购1,000元，2023年5月成立。', doc)).toEqual([]);
    expect(unsupportedNumbers('1. 管理费率3.5%\n2. 赎回费4%', doc)).toEqual(['4']);
  });
});

describe('filterSelfQa', () => {
  const document = '货币基金主要投资于国债、央行票据、银行存款等短期货币工具，管理费率一般为0.3%，流动性高，风险较低。';
  const good = (id: string, instruction: string): SelfQaPair => ({ id, instruction, answer: '货币基金主要投资于国债、央行票据、银行存款等短期货币工具，风险较低。' });

  it('drops each failing pair with its named reason and keeps the rest with their score', () => {
    const pairs: SelfQaPair[] = [
      good('p1', '货币基金主要投资于哪些工具？'),
      { id: 'p2', instruction: '  ', answer: '国债' },
      { id: 'p3', instruction: '根据上文，货币基金投资什么？', answer: '国债和央行票据。' },
      { id: 'p4', instruction: '货币基金的风险如何？', answer: '文中提到货币基金风险较低。' },
      { id: 'p5', instruction: '货币基金适合谁？', answer: '适合追求高收益、能承受大幅波动的激进投资者。' },
      { id: 'p6', instruction: '货币基金的管理费率是多少？', answer: '货币基金的管理费率一般为0.5%。' },
      good('p7', '货币基金主要投资于哪些工具？'),
      good('p8', '货币基金主要投资于哪些工具呢？'),
    ];
    const { kept, dropped } = filterSelfQa(document, pairs, { nearDuplicateThreshold: 0.7 });
    expect(kept.map((k) => k.id)).toEqual(['p1']);
    expect(kept[0].supportScore).toBe(1);
    expect(dropped.map((d) => [d.id, d.reason])).toEqual([
      ['p2', 'empty'],
      ['p3', 'refers-to-document'],
      ['p4', 'refers-to-document'],
      ['p5', 'unsupported-answer'],
      ['p6', 'unsupported-number'],
      ['p7', 'exact-duplicate'],
      ['p8', 'near-duplicate'],
    ]);
    expect(dropped.find((d) => d.id === 'p4')?.detail).toBe('answer matches zh-in-the-text');
    expect(dropped.find((d) => d.id === 'p6')?.detail).toBe('not in the document: 0.5');
    expect(dropped.find((d) => d.id === 'p7')?.detail).toBe('same instruction as p1');
  });

  it('keeps an answer whose support equals minSupport and drops one just below', () => {
    const pair = { id: 'q', instruction: '甲乙是什么？', answer: '甲乙丙戊己' }; // support exactly 0.5
    expect(filterSelfQa('甲乙丙丁', [pair], { minSupport: 0.5 }).kept.map((k) => k.id)).toEqual(['q']);
    expect(filterSelfQa('甲乙丙丁', [pair], { minSupport: 0.51 }).dropped).toEqual([{ id: 'q', reason: 'unsupported-answer', detail: 'support 0.500 < minSupport 0.51' }]);
  });

  it('lets a dropped pair block nothing, and deduplicates across documents with a shared filter', () => {
    const shared = new DuplicateFilter({ shingleSize: 3 });
    const first = filterSelfQa(document, [{ id: 'a', instruction: '货币基金投资什么？', answer: '火星土地。' }, good('b', '货币基金投资什么？')], {}, shared);
    expect(first.kept.map((k) => k.id)).toEqual(['b']);
    const second = filterSelfQa(document, [good('c', '货币基金投资什么？')], {}, shared);
    expect(second.dropped).toEqual([{ id: 'c', reason: 'exact-duplicate', detail: 'same instruction as b' }]);
  });

  it('can allow numbers the document lacks, and rejects bad config naming the field', () => {
    expect(filterSelfQa(document, [{ id: 'n', instruction: '费率？', answer: '货币基金的管理费率一般为0.5%。' }], { numbersMustAppear: false }).kept).toHaveLength(1);
    expect(() => filterSelfQa(document, [], { minSupport: 2 })).toThrow(/^selfqa\.minSupport: /);
    expect(() => filterSelfQa(document, [good('x', 'a'), good('x', 'b')])).toThrow(/id x appears twice/);
  });
});
