import { describe, expect, it } from 'vitest';
import { NearDuplicateIndex, bandsFor, estimateJaccard, minHasher } from './minhash';

function shingles(text: string, n = 5): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + n <= text.length; i++) out.add(text.slice(i, i + n));
  return out;
}

function jaccard(a: Set<string>, b: Set<string>): number {
  let both = 0;
  for (const s of a) if (b.has(s)) both++;
  return both / (a.size + b.size - both);
}

const base = Array.from({ length: 120 }, (_, i) => `word${(i * 37) % 101}`).join(' ');

describe('minHasher', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    expect(minHasher({ seed: 1 })(base)).toEqual(minHasher({ seed: 1 })(base));
    expect(minHasher({ seed: 1 })(base)).not.toEqual(minHasher({ seed: 2 })(base));
  });

  it('estimates the Jaccard similarity of 5-gram shingle sets', () => {
    const signature = minHasher({ permutations: 256 });
    const edited = base.replace('word37', 'changed').replace('word74', 'other');
    const half = base.slice(0, Math.floor(base.length / 2)) + ' ' + Array.from({ length: 60 }, (_, i) => `x${i}`).join(' ');
    for (const other of [edited, half]) {
      const truth = jaccard(shingles(base), shingles(other));
      expect(Math.abs(estimateJaccard(signature(base), signature(other)) - truth)).toBeLessThan(0.1);
    }
  });

  it('gives a text shorter than a shingle one shingle', () => {
    const signature = minHasher();
    expect(estimateJaccard(signature('abc'), signature('abc'))).toBe(1);
    expect(estimateJaccard(signature('abc'), signature('abd'))).toBeLessThan(0.2);
  });
});

describe('bandsFor', () => {
  it('keeps the candidate probability at the threshold at 0.95 or more with as few bands as that allows', () => {
    expect(bandsFor(0.9, 64)).toEqual({ bands: 7, rows: 9 });
    for (const t of [0.5, 0.7, 0.8, 0.9, 0.95]) {
      const { bands, rows } = bandsFor(t, 64);
      expect(bands * rows).toBeLessThanOrEqual(64);
      expect(1 - (1 - t ** rows) ** bands).toBeGreaterThanOrEqual(0.95);
      const fewer = Math.floor(64 / (rows + 1));
      expect(1 - (1 - t ** (rows + 1)) ** fewer).toBeLessThan(0.95);
    }
    expect(() => bandsFor(0, 64)).toThrow(/threshold must be in \(0, 1\]/);
  });
});

describe('NearDuplicateIndex', () => {
  it('returns the earlier entry for a one-word edit and indexes clearly different texts', () => {
    const signature = minHasher();
    const index = new NearDuplicateIndex<string>(64, 0.9);
    expect(index.findOrAdd(signature(base), 'first')).toBeUndefined();
    const match = index.findOrAdd(signature(base.replace('word37', 'word38')), 'second');
    expect(match?.ref).toBe('first');
    expect(match?.similarity).toBeGreaterThanOrEqual(0.9);
    expect(index.findOrAdd(signature(Array.from({ length: 120 }, (_, i) => `term${i}`).join(' ')), 'third')).toBeUndefined();
    expect(index.size).toBe(2);
  });

  it('grows past its initial capacity', () => {
    const signature = minHasher();
    const index = new NearDuplicateIndex<number>(64, 0.9);
    const text = (i: number) => Array.from({ length: 30 }, (_, j) => ((i * 2654435761 + j * 40503) >>> 7).toString(36)).join(' ');
    for (let i = 0; i < 3000; i++) expect(index.findOrAdd(signature(text(i)), i)).toBeUndefined();
    expect(index.size).toBe(3000);
    expect(index.findOrAdd(signature(text(2999)), -1)?.ref).toBe(2999);
  });
});
