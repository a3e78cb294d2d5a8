import { describe, expect, it } from 'vitest';
import { packBestFitDecreasing } from '@xyp/packing';
import { BUCKET_LENGTHS, DISTRIBUTIONS, REFERENCE_LABEL, generateCorpus, referenceCounts, runPackingBench } from './packing-bench';

describe('xyp bench packing', () => {
  const result = runPackingBench({ tokens: 300_000, seeds: 2, categorySettings: [1, 4] });

  it('runs every distribution in every category setting with every strategy beside the reference', () => {
    expect(result.cases.map((c) => `${c.distribution}/${c.categories}`)).toEqual(DISTRIBUTIONS.flatMap((d) => [`${d.name}/1`, `${d.name}/4`]));
    for (const c of result.cases) {
      expect(c.rows[0].label).toBe(REFERENCE_LABEL);
      expect(c.rows.map((row) => row.label)).toContain('bucket');
      expect(c.tokens.mean).toBeGreaterThanOrEqual(300_000);
    }
  });

  it('with one category and the corpus inside one window, bucket is exactly the whole-corpus reference', () => {
    for (const c of result.cases.filter((c) => c.categories === 1)) {
      const [reference, bucket] = [c.rows.find((r) => r.label === REFERENCE_LABEL)!, c.rows.find((r) => r.label === 'bucket')!];
      expect(bucket.paddingRatio, c.distribution).toEqual(reference.paddingRatio);
      expect(bucket.concatRatio, c.distribution).toEqual(reference.concatRatio);
      expect(c.bucketAtOrBelowReference).toEqual({ padding: 2, concat: 2, seeds: 2 });
    }
  });

  it('with categories ignored ("all"), bucket is the reference again', () => {
    for (const c of result.cases.filter((c) => c.categories === 4)) {
      const [reference, all] = [c.rows.find((r) => r.label === REFERENCE_LABEL)!, c.rows.find((r) => r.label === 'bucket, category mixing all')!];
      expect(all.paddingRatio, c.distribution).toEqual(reference.paddingRatio);
      expect(all.sequences, c.distribution).toEqual(reference.sequences);
    }
  });

  it('counts the reference from its plan: padding, pieces and cut documents by hand', () => {
    // Buckets 8/16: 40 -> two full 16s and a remainder of 8; longest first: 8 opens an 8 (full),
    // 5 opens another 8 (room 3), 3 fills it. 4 sequences, 48 tokens, no padding, 5 pieces, 1 cut document.
    expect(packBestFitDecreasing([40, 3, 5], [8, 16]).map((s) => [s.capacity, s.used])).toEqual([[16, 16], [16, 16], [8, 8], [8, 8]]);
    const records = [40, 3, 5].map((length, line) => ({ line, length, category: 'x' }));
    expect(referenceCounts(records, [8, 16])).toMatchObject({ documents: 3, truncatedDocuments: 1, sequences: 4, tokens: 48, paddingTokens: 0, pieces: 5 });
  });

  it('generates the same corpus for the same seed and another one for another seed', () => {
    const pareto = DISTRIBUTIONS[0];
    expect(generateCorpus(pareto, 50_000, 3, 1)).toEqual(generateCorpus(pareto, 50_000, 3, 1));
    expect(generateCorpus(pareto, 50_000, 3, 1)).not.toEqual(generateCorpus(pareto, 50_000, 3, 2));
    expect(BUCKET_LENGTHS).toEqual([2048, 4096, 8192, 16384]);
  });
});
