import { describe, expect, it } from 'vitest';
import { median } from '@xyp/stats';
import { canonicalNumber, contentTokens, editDistance, lengthUnits, normalizeText, numbersIn, visibleLength, withoutListMarkers } from './text';

describe('text measures', () => {
  it('tokenizes CJK runs into bigrams and Latin/digit runs into words', () => {
    expect(contentTokens('ETF基金费率0.5%')).toEqual(['etf', '基金', '金费', '费率', '0.5']);
    expect(contentTokens('甲')).toEqual(['甲']);
    expect(contentTokens('，。！')).toEqual([]);
  });

  it('counts CJK characters and Latin words as length units', () => {
    expect(lengthUnits('Sorry, I cannot 回答')).toBe(5);
    expect(lengthUnits('3.5%的收益')).toBe(4);
    expect(visibleLength(' a b\n 论 ')).toBe(3);
  });

  it('writes numbers canonically and skips list markers', () => {
    expect(numbersIn('1,000.50 与 05 和 3.0、２０２３')).toEqual(['1000.5', '5', '3', '2023']);
    expect(canonicalNumber('0.50')).toBe('0.5');
    expect(canonicalNumber('000')).toBe('0');
    expect(numbersIn(withoutListMarkers('1. 费率1.5%\n(2) 期限3年\n10、结论'))).toEqual(['1.5', '3']);
  });

  it('normalizes and measures edits', () => {
    expect(normalizeText('  ＥＴＦ\n\t基金  ')).toBe('etf 基金');
    expect(editDistance('投研能力', '投研应用能力')).toBe(2);
    expect(median([3, 1, 2, 10])).toBe(2.5);
  });
});
