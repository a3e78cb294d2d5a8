import { describe, expect, it } from 'vitest';
import { rankPackings } from './rank';

const packing = (instance: string, paddingRatio: number, truncationRatio: number, concatRatio = 2) => ({
  instance,
  result: { strategy: instance.split('#')[1] ?? 'bucket', tokens: 1000, paddingRatio, truncationRatio, concatRatio },
});

describe('rankPackings', () => {
  it('puts the packing that wastes least first, ties to the lower concatenation ratio', () => {
    const ranked = rankPackings([packing('corpus.bucket#fixed', 0.001, 0.19), packing('corpus.bucket#bfd', 0.003, 0.03), packing('corpus.bucket#bucket', 0.003, 0.002)], 'waste');
    expect(ranked.best).toBe('corpus.bucket#bucket');
    expect(ranked.ranking.map((r) => r.instance)).toEqual(['corpus.bucket#bucket', 'corpus.bucket#bfd', 'corpus.bucket#fixed']);
    expect(ranked.ranking[0].score).toBeCloseTo(0.005, 12);
    expect(rankPackings([packing('a#x', 0.1, 0, 5), packing('a#y', 0.1, 0, 3)], 'padding').best).toBe('a#y');
  });

  it('ranks by padding or truncation alone when asked', () => {
    const packings = [packing('a#pad', 0.01, 0.2), packing('a#cut', 0.2, 0.01)];
    expect(rankPackings(packings, 'padding').best).toBe('a#pad');
    expect(rankPackings(packings, 'truncation').best).toBe('a#cut');
  });
});
