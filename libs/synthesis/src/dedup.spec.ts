import { hashString } from '@xyp/random';
import { describe, expect, it } from 'vitest';
import { DuplicateFilter, dedupItems, dialogueText } from './dedup';
import { chatMessages } from './records';
import { normalizeText } from './text';

const item = (id: string, user: string, assistant: string, system?: string) => ({ id, messages: chatMessages(user, assistant, system) });
const long = '货币基金主要投资于国债、央行票据、银行存款、同业存单等短期货币市场工具，流动性高，风险较低，适合作为闲置资金的管理工具。';

describe('dedupItems', () => {
  it('drops exact duplicates after normalization (case, spaces, full width) and keeps the first', () => {
    const { kept, dropped } = dedupItems([item('a', 'What is an ETF?', long), item('b', '  what   is an ETF？ ', long), item('c', 'ＷＨＡＴ IS AN ETF?', long)]);
    expect(kept.map((k) => k.id)).toEqual(['a']);
    expect(dropped).toEqual([
      { id: 'b', reason: 'exact-duplicate', of: 'a' },
      { id: 'c', reason: 'exact-duplicate', of: 'a' },
    ]);
  });

  it('drops a near duplicate at the threshold and keeps a different item', () => {
    const near = long.replace('流动性高', '流动性较高');
    const { kept, dropped } = dedupItems([item('a', '货币基金投资什么？', long), item('b', '货币基金投资什么？', near), item('c', '什么是可转债？', '可转债是一种可以在特定时间按约定价格转换为股票的公司债券。')], { nearDuplicateThreshold: 0.7 });
    expect(kept.map((k) => k.id)).toEqual(['a', 'c']);
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ id: 'b', reason: 'near-duplicate', of: 'a' });
    expect(dropped[0].similarity).toBeGreaterThanOrEqual(0.7);
    expect(dedupItems([item('a', '货币基金投资什么？', long), item('b', '货币基金投资什么？', near)], { nearDuplicateThreshold: 0.99 }).kept).toHaveLength(2);
  });

  it('compares user and assistant turns only, not the system prompt', () => {
    expect(dialogueText(chatMessages('u', 'a', 'sys'))).toBe('user: u\nassistant: a');
    expect(dedupItems([item('a', 'u', long, '系统一'), item('b', 'u', long, '系统二')]).dropped).toEqual([{ id: 'b', reason: 'exact-duplicate', of: 'a' }]);
    expect(() => dedupItems([item('a', 'u', 'x'), item('a', 'v', 'y')])).toThrow(/id a appears twice/);
  });

  it('never drops a text only because its hash collides with another', () => {
    // Find two different strings with the same FNV-1a 32 hash (birthday bound: ~2^16 tries).
    const byHash = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined && i < 1_000_000; i++) {
      const text = `q${i}`;
      const h = hashString(normalizeText(text));
      const other = byHash.get(h);
      if (other !== undefined) pair = [other, text];
      else byHash.set(h, text);
    }
    expect(pair).toBeDefined();
    const filter = new DuplicateFilter({ nearDuplicateThreshold: 1 });
    expect(filter.check('x', pair![0])).toBeUndefined();
    expect(filter.check('y', pair![1])).toBeUndefined();
    expect(filter.check('z', pair![1])).toEqual({ kind: 'exact', of: 'y' });
  });

  it('rejects a bad threshold naming the field', () => {
    expect(() => new DuplicateFilter({ nearDuplicateThreshold: 0 })).toThrow(/^dedup\.nearDuplicateThreshold/);
  });
});
