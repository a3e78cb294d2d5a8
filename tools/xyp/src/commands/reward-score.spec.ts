import { describe, expect, it } from 'vitest';
import { parseRewardInput, rewardScoreReport } from './reward-score';

describe('xyp reward score input and report', () => {
  it('reads response lines and preference pairs, and names every bad line by number', () => {
    const text = [
      JSON.stringify({ prompt: 'rate?', response: '5%', category: 'finance' }),
      '',
      JSON.stringify({ prompt: 'rate?', chosen: '5%', rejected: 'no idea' }),
      '{not json',
      JSON.stringify({ prompt: 'p' }),
      JSON.stringify({ prompt: 'p', response: '' }),
      JSON.stringify({ prompt: 'p', chosen: 'x'.repeat(70_000), rejected: 'y' }),
      JSON.stringify({ prompt: 'p', response: 'r', chosen: 'c', rejected: 'r' }),
    ].join('\n');
    const { lines, errors } = parseRewardInput(text);
    expect(lines).toEqual([
      { line: 1, kind: 'response', item: { prompt: 'rate?', response: '5%', category: 'finance' } },
      { line: 3, kind: 'pair', chosen: { prompt: 'rate?', response: '5%', category: undefined }, rejected: { prompt: 'rate?', response: 'no idea', category: undefined } },
      // An empty response is scored, as the service scores it.
      { line: 6, kind: 'response', item: { prompt: 'p', response: '', category: undefined } },
    ]);
    expect(errors).toHaveLength(4);
    expect(errors[0]).toMatch(/^line 4: not JSON/);
    expect(errors[1]).toMatch(/^line 5: needs a string "response"/);
    expect(errors[2]).toBe('line 7 (chosen): prompt and response are 70,001 bytes of UTF-8; at most 65,536 bytes (64 KiB) per item');
    expect(errors[3]).toMatch(/^line 8: .*one of the two forms$/);
  });

  it('reports one entry per line, pairs with their margin, accuracy and mean margin', () => {
    const { lines } = parseRewardInput(
      [JSON.stringify({ prompt: 'a', response: 'b' }), JSON.stringify({ prompt: 'a', chosen: 'c', rejected: 'd' }), JSON.stringify({ prompt: 'a', chosen: 'e', rejected: 'f' })].join('\n'),
    );
    expect(rewardScoreReport('rm/engine.rm', lines, [0.5, 2, 1, 0, 0.5])).toEqual({
      model: 'rm/engine.rm',
      items: 3,
      scores: [
        { line: 1, score: 0.5 },
        { line: 2, chosen: 2, rejected: 1, margin: 1 },
        { line: 3, chosen: 0, rejected: 0.5, margin: -0.5 },
      ],
      pairs: { count: 2, accuracy: 0.5, meanMargin: 0.25 },
    });
  });
});
