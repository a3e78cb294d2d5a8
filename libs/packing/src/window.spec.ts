import { describe, expect, it } from 'vitest';
import { emptyCounts, ratios } from './metrics';
import { createRng } from '@xyp/random';
import { simulatePacking } from './simulate';
import { createStrategy } from './strategies';
import { WindowPacker, type EmittedSequence, type PackItem } from './window';
import { Windowing } from './windowing';

function item(line: number, length: number, category = 'news'): PackItem {
  return { line, category, length, offset: 0, docLength: length };
}

const noCarry = { seed: 1, paddingThreshold: 1, maxCarryTokens: 0, categoryMixing: 'none' as const };
const carrying = (maxCarryTokens: number, categoryMixing: 'none' | 'tails' | 'all' = 'none') => ({ seed: 0, paddingThreshold: 0.01, maxCarryTokens, categoryMixing });

describe('composition metrics (arXiv 2407.07495, section 3)', () => {
  it('computes padding / all slots, cut documents / documents and documents / sequences', () => {
    const counts = { ...emptyCounts(), documents: 200, truncatedDocuments: 3, sequences: 50, tokens: 99_000, paddingTokens: 1_000 };
    expect(ratios(counts)).toEqual({ paddingRatio: 0.01, truncationRatio: 0.015, concatRatio: 4 });
    expect(ratios(emptyCounts())).toEqual({ paddingRatio: 0, truncationRatio: 0, concatRatio: 0 });
  });

  it('counts per length, per category and in total from the emitted sequences', () => {
    const packer = new WindowPacker(createStrategy('bucket', [8, 16]), noCarry);
    packer.pack({ window: 0, part: 0 }, [item(0, 20, 'a'), item(1, 4, 'a'), item(2, 3, 'b')]);
    // a: 20 -> a full 16 plus a remainder of 4, which shares an 8 with document 1; b: 3 in an 8.
    expect(packer.stats.total).toEqual({ documents: 3, truncatedDocuments: 1, pieces: 4, sequences: 3, tokens: 27, paddingTokens: 5, mixedSequences: 0 });
    expect(packer.stats.byLength['16']).toEqual({ documents: 1, truncatedDocuments: 1, pieces: 1, sequences: 1, tokens: 16, paddingTokens: 0, mixedSequences: 0 });
    expect(packer.stats.byLength['8']).toEqual({ documents: 3, truncatedDocuments: 1, pieces: 3, sequences: 2, tokens: 11, paddingTokens: 5, mixedSequences: 0 });
    expect(packer.stats.byCategory.a).toEqual({ documents: 2, truncatedDocuments: 1, pieces: 3, sequences: 2, tokens: 24, paddingTokens: 0, mixedSequences: 0 });
    expect(packer.stats.byCategory.b).toEqual({ documents: 1, truncatedDocuments: 0, pieces: 1, sequences: 1, tokens: 3, paddingTokens: 5, mixedSequences: 0 });
  });
});

describe('WindowPacker', () => {
  const strategy = createStrategy('bucket', [8, 16, 32]);
  const categories = (output: { sequences: EmittedSequence[][] }) => output.sequences.flat().map((s) => new Set(s.pieces.map((p) => p.item.category)).size);

  it('never mixes categories in one sequence', () => {
    const packer = new WindowPacker(strategy, noCarry);
    const rng = createRng(3);
    const items = Array.from({ length: 200 }, (_, line) => item(line, 1 + rng.nextInt(40), ['a', 'b', 'c'][rng.nextInt(3)]));
    expect(new Set(categories(packer.pack({ window: 0, part: 0 }, items)))).toEqual(new Set([1]));
  });

  it('shuffles the sequences of a window by seed: same seed same order, another seed another order', () => {
    const items = Array.from({ length: 100 }, (_, line) => item(line, 1 + ((line * 7) % 30)));
    const order = (seed: number) =>
      new WindowPacker(strategy, { ...noCarry, seed })
        .pack({ window: 3, part: 0 }, items)
        .sequences.flat()
        .map((s) => s.pieces.map((p) => p.item.line).join(','));
    expect(order(5)).toEqual(order(5));
    expect(order(5)).not.toEqual(order(6));
    expect([...order(5)].sort()).toEqual([...order(6)].sort());
  });

  it('carries an under-filled sequence into later windows and emits it at the latest when the shard ends', () => {
    const packer = new WindowPacker(strategy, carrying(100));
    const first = packer.pack({ window: 0, part: 0 }, [item(0, 8), item(1, 3)]);
    expect(first.sequences.flat().map((s) => s.used)).toEqual([8]);
    expect(packer.carriedTokens).toBe(3);
    const second = packer.pack({ window: 1, part: 0 }, [item(2, 5)]);
    // The carried 3 tokens fill the 8-token sequence together with the new document.
    expect(second.sequences.flat().map((s) => s.pieces.map((p) => p.item.line))).toEqual([[2, 1]]);
    expect(packer.finish()).toBeNull();
    packer.pack({ window: 2, part: 0 }, [item(3, 2)]);
    expect(packer.carriedTokens).toBe(2);
    expect(packer.finish()!.sequences.flat().map((s) => s.used)).toEqual([2]);
    expect(packer.stats.total.documents).toBe(4);
    expect(packer.stats.total.paddingTokens).toBe(6);
  });

  it('carries no more than maxCarryTokens', () => {
    const packer = new WindowPacker(strategy, carrying(4));
    const output = packer.pack({ window: 0, part: 0 }, [item(0, 3, 'a'), item(1, 3, 'b'), item(2, 3, 'c')]);
    expect(packer.carriedTokens).toBe(3);
    expect(output.sequences.flat()).toHaveLength(2);
  });

  it('counts a cut document once, when its last piece is written, even across windows', () => {
    const packer = new WindowPacker(strategy, carrying(100));
    packer.pack({ window: 0, part: 0 }, [item(0, 70)]);
    expect(packer.stats.total.documents).toBe(0);
    expect(packer.carriedTokens).toBe(6);
    packer.finish();
    expect(packer.stats.total).toMatchObject({ documents: 1, truncatedDocuments: 1, pieces: 3, tokens: 70 });
  });
});

describe('WindowPacker: category tails, the reference and the carry bound', () => {
  const strategy = createStrategy('bucket', [8, 16, 32]);
  const lines = (sequence: EmittedSequence) => sequence.pieces.map((p) => p.item.line);

  it('with categoryMixing "tails", packs the shard-end leftovers of several categories together', () => {
    // a: 5 tokens, b: 2, c: 1 -> none fills an 8; alone they pad 3 + 6 + 7 = 16 tokens in three 8s.
    const run = (categoryMixing: 'none' | 'tails') => {
      const packer = new WindowPacker(strategy, carrying(100, categoryMixing));
      const first = packer.pack({ window: 0, part: 0 }, [item(0, 5, 'a'), item(1, 2, 'b'), item(2, 1, 'c')]);
      expect(first.sequences.flat()).toEqual([]);
      return { packer, last: packer.finish()!.sequences.flat() };
    };
    const separate = run('none');
    expect(separate.last.map((s) => [s.category, s.capacity, s.used])).toEqual(
      expect.arrayContaining([['a', 8, 5], ['b', 8, 2], ['c', 8, 1]]),
    );
    expect(separate.packer.stats.total).toMatchObject({ sequences: 3, paddingTokens: 16, mixedSequences: 0 });
    const mixed = run('tails');
    // One 8 holds all three (5 + 2 + 1), labelled with a, which holds most of its tokens.
    expect(mixed.last.map((s) => [s.category, s.capacity, s.used, lines(s)])).toEqual([['a', 8, 8, [0, 1, 2]]]);
    expect(mixed.packer.stats.total).toMatchObject({ sequences: 1, paddingTokens: 0, mixedSequences: 1, documents: 3, tokens: 8 });
    // Documents and tokens count for their own category, the sequence for its label.
    expect(mixed.packer.stats.byCategory.b).toMatchObject({ documents: 1, tokens: 2, sequences: 0 });
    expect(mixed.packer.stats.byCategory.a).toMatchObject({ documents: 1, tokens: 5, sequences: 1, mixedSequences: 1 });
  });

  it('with "tails", mixes nothing but the leftovers: full sequences keep one category', () => {
    const packer = new WindowPacker(strategy, carrying(1000, 'tails'));
    const out = packer.pack({ window: 0, part: 0 }, [item(0, 8, 'a'), item(1, 16, 'b'), item(2, 3, 'a'), item(3, 4, 'b')]);
    expect(out.sequences.flat().map((s) => [s.category, s.used])).toEqual(expect.arrayContaining([['a', 8], ['b', 16]]));
    expect(out.sequences.flat().every((s) => s.pieces.every((p) => p.item.category === s.category))).toBe(true);
    const last = packer.finish()!.sequences.flat();
    expect(last.map((s) => [s.capacity, s.used, lines(s)])).toEqual([[8, 7, [3, 2]]]);
  });

  it('with "all", ignores categories and labels each sequence with its majority category (ties: code-unit order)', () => {
    const packer = new WindowPacker(strategy, { ...noCarry, categoryMixing: 'all' });
    const out = packer.pack({ window: 0, part: 0 }, [item(0, 4, 'b'), item(1, 4, 'a')]).sequences.flat();
    expect(out.map((s) => [s.category, s.used])).toEqual([['a', 8]]);
  });

  it('bfd-buckets packs each window on its own: it carries nothing', () => {
    const packer = new WindowPacker(createStrategy('bfd-buckets', [8, 16, 32]), carrying(100, 'tails'));
    const out = packer.pack({ window: 0, part: 0 }, [item(0, 8), item(1, 3)]);
    expect(out.sequences.flat().map((s) => s.used)).toEqual(expect.arrayContaining([8, 3]));
    expect(packer.carriedTokens).toBe(0);
    expect(packer.finish()).toBeNull();
  });

  it('keeps every token exactly once and never carries more than maxCarryTokens, over random shards (property)', () => {
    for (let seed = 0; seed < 40; seed++) {
      const rng = createRng(seed);
      const maxCarry = 1 + rng.nextInt(80);
      const mixing = (['none', 'tails', 'all'] as const)[seed % 3];
      const packer = new WindowPacker(strategy, { seed, paddingThreshold: 0.01 * rng.nextInt(20), maxCarryTokens: maxCarry, categoryMixing: mixing });
      const seen = new Map<number, number[]>();
      const lengths: number[] = [];
      const emit = (output: { sequences: EmittedSequence[][] } | null) => {
        for (const sequence of output?.sequences.flat() ?? []) {
          expect(sequence.used).toBeLessThanOrEqual(sequence.capacity);
          for (const piece of sequence.pieces) {
            const ranges = seen.get(piece.item.line) ?? [];
            for (let t = piece.item.offset + piece.start; t < piece.item.offset + piece.start + piece.length; t++) ranges.push(t);
            seen.set(piece.item.line, ranges);
          }
        }
      };
      let line = 0;
      const windows = 1 + rng.nextInt(8);
      for (let w = 0; w < windows; w++) {
        const items = Array.from({ length: rng.nextInt(30) }, () => {
          const length = 1 + rng.nextInt(rng.nextFloat() < 0.1 ? 100 : 12);
          lengths[line] = length;
          return item(line++, length, ['a', 'b', 'c'][rng.nextInt(3)]);
        });
        emit(packer.pack({ window: w, part: 0 }, items));
        expect(packer.carriedTokens, `seed ${seed} window ${w}`).toBeLessThanOrEqual(maxCarry);
      }
      emit(packer.finish());
      expect(packer.carriedTokens).toBe(0);
      lengths.forEach((length, l) => {
        const tokens = (seen.get(l) ?? []).sort((x, y) => x - y);
        expect(tokens, `seed ${seed} line ${l}`).toEqual(Array.from({ length }, (_, t) => t));
      });
      expect(packer.stats.total.documents).toBe(lengths.length);
      expect(packer.stats.total.tokens).toBe(lengths.reduce((sum, length) => sum + length, 0));
      if (mixing === 'none') expect(packer.stats.total.mixedSequences).toBe(0);
    }
  });
});

describe('Windowing', () => {
  it('closes a window at every windowLines boundary and when its tokens reach windowTokens', () => {
    const windowing = new Windowing<number>(10, 100);
    const closed: string[] = [];
    const record = (windows: { key: { window: number; part: number }; items: number[] }[]) =>
      windows.forEach((w) => closed.push(`${w.key.window}.${w.key.part}:${w.items.join(',')}`));
    record(windowing.push(0, 60, 0));
    record(windowing.push(3, 50, 3)); // 110 tokens >= 100: closes 0.0
    record(windowing.push(4, 10, 4));
    record(windowing.push(12, 10, 12)); // new line block: closes 0.1
    record(windowing.finish());
    expect(closed).toEqual(['0.0:0,3', '0.1:4', '1.0:12']);
    expect(() => windowing.push(12, 1, 12)).toThrow('lines must increase');
  });
});

describe('simulatePacking', () => {
  it('gives every document exactly once and pads only at shard ends when carrying is on', () => {
    const rng = createRng(11);
    const records = Array.from({ length: 3000 }, (_, line) => ({ line, length: 1 + Math.floor(Math.exp(rng.nextFloat() * 7)), category: ['x', 'y'][rng.nextInt(2)] }));
    const options = { windowLines: 256, windowTokens: 20_000, shardLines: 1024, seed: 0, paddingThreshold: 0.01, categoryMixing: 'tails' as const };
    const stats = simulatePacking(records, createStrategy('bucket', [256, 512, 1024]), options);
    expect(stats.total.documents).toBe(3000);
    expect(stats.total.tokens).toBe(records.reduce((sum, r) => sum + r.length, 0));
    expect(ratios(stats.total).paddingRatio).toBeLessThan(0.01);
    const cut = records.filter((r) => r.length > 1024).length;
    expect(stats.total.truncatedDocuments).toBe(cut);
  });
});
