import { describe, expect, it } from 'vitest';
import { extractNumbers, numericReference, verifyAnswer } from './verifiable';

describe('verifiable answers', () => {
  it('reads numbers with thousands separators, signs, percents and 万/亿', () => {
    expect(extractNumbers('Revenue 1,250.5 yuan, down -3.2% or −4, 2万 and 1.5亿; 1e3').map((n) => [n.value, n.percent])).toEqual([
      [1250.5, false],
      [-3.2, true],
      [-4, false],
      [20000, false],
      [150000000, false],
      [1000, false],
    ]);
    expect(numericReference('$1,250.50')?.value).toBe(1250.5);
    expect(numericReference('the answer is 12')).toBeUndefined();
  });

  it('compares the last number under a relative tolerance', () => {
    expect(verifyAnswer('Step 1: 1000. So the total is 1250.52', '1,250.5').correct).toBe(true);
    expect(verifyAnswer('Step 1: 1000. So the total is 1250.52', '1,250.5', { relTol: 1e-6 }).correct).toBe(false);
    expect(verifyAnswer('The total is 1250.5, not 1300', 1250.5).correct).toBe(false);
    expect(verifyAnswer('The total is 1250.5, not 1300', 1250.5, { answer: 'any' }).correct).toBe(true);
    expect(verifyAnswer('The rate is 5.2%', '0.052').correct).toBe(true);
    expect(verifyAnswer('no number here', 3).correct).toBe(false);
    expect(verifyAnswer('It is 0', 0).correct).toBe(true);
  });

  it('matches a text reference after normalization, on the whole response or its last line', () => {
    expect(verifyAnswer('  Bond  ', 'bond.').correct).toBe(true);
    expect(verifyAnswer('Let me think.\nAnswer: Treasury Bill', 'treasury bill').correct).toBe(true);
    expect(verifyAnswer('答案：国债', '国债').correct).toBe(true);
    expect(verifyAnswer('It is not a treasury bill', 'treasury bill').correct).toBe(false);
  });
});
