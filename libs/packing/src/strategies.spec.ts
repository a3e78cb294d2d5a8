import { describe, expect, it } from 'vitest';
import { CountTree } from './count-tree';
import { createRng, type Rng } from '@xyp/random';
import { createStrategy } from './strategies';
import type { PackedSequence, PackingStrategy } from './strategy';

/** Document lengths with a realistic spread: mostly short, some long, a few longer than `max`. */
function randomLengths(rng: Rng, max: number): number[] {
  const n = 1 + rng.nextInt(300);
  return Array.from({ length: n }, () => {
    const u = rng.nextFloat();
    if (u < 0.6) return 1 + rng.nextInt(Math.max(1, max >> 3));
    if (u < 0.9) return 1 + rng.nextInt(max);
    if (u < 0.97) return 1 + rng.nextInt(2 * max);
    return max * (1 + rng.nextInt(3)) + rng.nextInt(2);
  });
}

/**
 * Checks the invariants every strategy promises and returns pieces per document. Plain checks
 * that throw (thousands of `expect` calls per plan would dominate the run time).
 */
function checkPlan(strategy: PackingStrategy, lengths: number[], plan: PackedSequence[]): number[] {
  const fail = (message: string): never => {
    throw new Error(`${strategy.name}: ${message} (lengths ${JSON.stringify(lengths)})`);
  };
  const covered: [number, number][][] = lengths.map(() => []);
  for (const sequence of plan) {
    if (!strategy.lengths.includes(sequence.capacity)) fail(`unknown capacity ${sequence.capacity}`);
    if (sequence.pieces.length === 0) fail('empty sequence');
    const used = sequence.pieces.reduce((sum, piece) => sum + piece.length, 0);
    if (used !== sequence.used) fail(`used ${sequence.used} != ${used}`);
    if (used > sequence.capacity) fail(`sequence over its length: ${used} > ${sequence.capacity}`);
    for (const piece of sequence.pieces) {
      if (piece.length < 1) fail('empty piece');
      covered[piece.doc].push([piece.start, piece.start + piece.length]);
    }
  }
  // No token lost or duplicated: each document's pieces tile [0, length) exactly.
  covered.forEach((ranges, doc) => {
    ranges.sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [start, end] of ranges) {
      if (start !== at) fail(`document ${doc}: gap or overlap at token ${at}`);
      at = end;
    }
    if (at !== lengths[doc]) fail(`document ${doc}: ${at} of ${lengths[doc]} tokens packed`);
  });
  return covered.map((ranges) => ranges.length);
}

const SMALL_BUCKETS = [16, 32, 64, 128];

describe('packing strategies, property-style over 200 seeded random document sets', () => {
  const strategies = [createStrategy('bucket', SMALL_BUCKETS), createStrategy('bfd-buckets', SMALL_BUCKETS), createStrategy('bfd', [128]), createStrategy('fixed', [128]), createStrategy('bfd', [16])];
  for (const strategy of strategies) {
    it(`${strategy.name}@${strategy.lengths.join(',')} loses and duplicates no token and never overfills a sequence`, () => {
      for (let seed = 0; seed < 200; seed++) {
        const lengths = randomLengths(createRng(seed), 128);
        const plan = strategy.pack(lengths);
        const pieces = checkPlan(strategy, lengths, plan);
        if (strategy.name !== 'fixed') {
          // bucket and bfd cut a document only when it is longer than the largest length.
          const max = strategy.lengths[strategy.lengths.length - 1];
          const wrong = pieces.findIndex((count, doc) => count > 1 !== lengths[doc] > max);
          expect(wrong, `seed ${seed}`).toBe(-1);
        }
        expect(JSON.stringify(strategy.pack(lengths))).toBe(JSON.stringify(plan));
      }
    });
  }

  it('bucket uses the smallest bucket that holds the longest piece while short documents can fill it', () => {
    const strategy = createStrategy('bucket', SMALL_BUCKETS);
    for (let seed = 0; seed < 50; seed++) {
      const rng = createRng(seed);
      const lengths = [...randomLengths(rng, 128), ...Array.from({ length: 2000 }, () => 1 + rng.nextInt(4))];
      const plan = strategy.pack(lengths);
      const wrong = plan.slice(0, -1).filter((sequence) => {
        const longest = Math.max(...sequence.pieces.map((piece) => piece.length));
        return sequence.capacity !== SMALL_BUCKETS.find((length) => length >= longest) || sequence.used !== sequence.capacity;
      });
      expect(wrong, `seed ${seed}`).toEqual([]);
    }
  });

  it('fixed fills every sequence but the last one completely', () => {
    const strategy = createStrategy('fixed', [128]);
    for (let seed = 0; seed < 200; seed++) {
      const plan = strategy.pack(randomLengths(createRng(seed), 128));
      expect(plan.slice(0, -1).filter((sequence) => sequence.used !== 128)).toEqual([]);
    }
  });

  it('bucket pads less than 1% and concatenates fewer documents than bfd and fixed at the largest length', () => {
    const lengths = Array.from({ length: 20 }, (_, seed) => randomLengths(createRng(1000 + seed), 128)).flat();
    const measure = (strategy: PackingStrategy) => {
      const plan = strategy.pack(lengths);
      const slots = plan.reduce((sum, sequence) => sum + sequence.capacity, 0);
      const used = plan.reduce((sum, sequence) => sum + sequence.used, 0);
      return { padding: (slots - used) / slots, concat: lengths.length / plan.length };
    };
    const bucket = measure(createStrategy('bucket', SMALL_BUCKETS));
    expect(bucket.padding).toBeLessThan(0.01);
    expect(bucket.concat).toBeLessThan(measure(createStrategy('bfd', [128])).concat);
    expect(bucket.concat).toBeLessThan(measure(createStrategy('fixed', [128])).concat);
  });
});

describe('bucket strategy (arXiv 2407.07495, best-fit-decreasing placement)', () => {
  const strategy = createStrategy('bucket', [2048, 4096, 8192, 16384]);

  it('cuts a document longer than 16,384 into full 16k sequences plus a remainder that is packed like any document', () => {
    const plan = strategy.pack([40000, 1000]);
    expect(plan.slice(0, 2)).toEqual([
      { capacity: 16384, used: 16384, pieces: [{ doc: 0, start: 0, length: 16384 }] },
      { capacity: 16384, used: 16384, pieces: [{ doc: 0, start: 16384, length: 16384 }] },
    ]);
    // The 7,232-token remainder opens an 8k sequence; the 1,000-token document no longer fits its 960 tokens of room.
    expect(plan.slice(2)).toEqual([
      { capacity: 8192, used: 7232, pieces: [{ doc: 0, start: 32768, length: 7232 }] },
      { capacity: 2048, used: 1000, pieces: [{ doc: 1, start: 0, length: 1000 }] },
    ]);
  });

  it('places pieces longest first into the tightest open room, opening the smallest bucket that holds a piece', () => {
    // By hand: 3000 opens a 4096 (room 1096); 1500 fits no room, opens a 2048 (room 548);
    // 1000 -> the 4096 (room 96: 1096 is the only room >= 1000); 500 -> the 2048 (room 48, tighter than 96);
    // 90 -> the 4096 (room 6: 96 is the only room >= 90); 40 -> the 2048 (room 8); 6 -> the 4096 (room 0).
    const plan = strategy.pack([3000, 500, 1000, 90, 6, 1500, 40]);
    expect(plan.map((sequence) => [sequence.capacity, sequence.used, sequence.pieces.map((piece) => piece.doc)])).toEqual([
      [4096, 4096, [0, 2, 3, 4]],
      [2048, 2040, [5, 1, 6]],
    ]);
  });

  it('fills the room of a long piece before opening a small bucket', () => {
    // 2100 opens a 4096 (room 1996): 900 and then 800 fit there, so no 2048 is opened.
    expect(strategy.pack([2100, 900, 800]).map((sequence) => [sequence.capacity, sequence.used])).toEqual([[4096, 3800]]);
    // 1200 does not fit the 4096's room of 96 left after 2100 + 1900: it opens a 2048.
    expect(strategy.pack([2100, 1900, 1200]).map((sequence) => [sequence.capacity, sequence.used])).toEqual([
      [4096, 4000],
      [2048, 1200],
    ]);
  });

  it('is the same placement as bfd-buckets; only the pipeline treats them differently (pooled or not)', () => {
    for (let seed = 0; seed < 20; seed++) {
      const lengths = randomLengths(createRng(500 + seed), 128);
      expect(createStrategy('bucket', SMALL_BUCKETS).pack(lengths)).toEqual(createStrategy('bfd-buckets', SMALL_BUCKETS).pack(lengths));
    }
    expect(createStrategy('bucket', SMALL_BUCKETS).pooled).toBe(true);
    expect(createStrategy('bfd-buckets', SMALL_BUCKETS).pooled).toBe(false);
  });

  it('matches an independent brute-force best-fit-decreasing on random pools', () => {
    // A plain O(n^2) re-implementation of the 4-step reference, written separately from best-fit.ts.
    const reference = (lengths: number[], buckets: number[]) => {
      const max = buckets[buckets.length - 1];
      const pieces: number[] = [];
      const sequences: { capacity: number; used: number }[] = [];
      for (const length of lengths) {
        let left = length;
        if (length > max) {
          for (; left >= max; left -= max) sequences.push({ capacity: max, used: max });
        }
        if (left > 0) pieces.push(left);
      }
      // Ties between equal rooms go to the sequence whose room changed last.
      const open: { capacity: number; used: number; changed: number }[] = [];
      let clock = 0;
      for (const piece of [...pieces].sort((a, b) => b - a)) {
        let best: { capacity: number; used: number; changed: number } | null = null;
        for (const candidate of open) {
          const room = candidate.capacity - candidate.used;
          if (room >= piece && (best === null || room < best.capacity - best.used || (room === best.capacity - best.used && candidate.changed > best.changed))) best = candidate;
        }
        if (best === null) open.push((best = { capacity: buckets.find((b) => b >= piece)!, used: 0, changed: 0 }));
        best.used += piece;
        best.changed = ++clock;
      }
      for (const sequence of open) sequence.capacity = buckets.find((b) => b >= sequence.used)!; // step 4 (shrink)
      return [...sequences, ...open.map(({ capacity, used }) => ({ capacity, used }))];
    };
    for (let seed = 0; seed < 100; seed++) {
      const lengths = randomLengths(createRng(2000 + seed), 128);
      const plan = createStrategy('bucket', SMALL_BUCKETS).pack(lengths).map(({ capacity, used }) => ({ capacity, used }));
      expect(plan, `seed ${seed}`).toEqual(reference(lengths, SMALL_BUCKETS));
    }
  });

  it('rejects bucket lengths that are not strictly ascending', () => {
    expect(() => createStrategy('bucket', [4096, 2048])).toThrow('strictly ascending');
    expect(() => createStrategy('bfd-buckets', [4096, 4096])).toThrow('strictly ascending');
    expect(() => createStrategy('fixed', [2048, 4096])).toThrow('exactly one');
  });
});

describe('bfd and fixed baselines', () => {
  it('bfd puts each piece into the open sequence with the least room that holds it', () => {
    const plan = createStrategy('bfd', [10]).pack([6, 5, 4, 3, 2]);
    expect(plan.map((sequence) => sequence.pieces.map((piece) => piece.doc))).toEqual([[0, 2], [1, 3, 4]]);
  });

  it('fixed concatenates in order and cuts every L tokens', () => {
    const plan = createStrategy('fixed', [4]).pack([3, 3, 1]);
    expect(plan).toEqual([
      { capacity: 4, used: 4, pieces: [{ doc: 0, start: 0, length: 3 }, { doc: 1, start: 0, length: 1 }] },
      { capacity: 4, used: 3, pieces: [{ doc: 1, start: 1, length: 2 }, { doc: 2, start: 0, length: 1 }] },
    ]);
  });
});

describe('CountTree', () => {
  it('answers predecessor and successor like a linear scan', () => {
    const rng = createRng(7);
    const tree = new CountTree(100);
    const counts = new Array(101).fill(0);
    for (let step = 0; step < 2000; step++) {
      const key = rng.nextInt(101);
      if (counts[key] > 0 && rng.nextFloat() < 0.5) {
        counts[key]--;
        tree.add(key, -1);
      } else {
        counts[key]++;
        tree.add(key, 1);
      }
      const probe = rng.nextInt(101);
      let below = -1;
      for (let k = probe; k >= 0; k--) if (counts[k] > 0) { below = k; break; }
      let above = -1;
      for (let k = probe; k <= 100; k++) if (counts[k] > 0) { above = k; break; }
      if (tree.predecessor(probe) !== below || tree.successor(probe) !== above) {
        expect([tree.predecessor(probe), tree.successor(probe)], `step ${step}, key ${probe}`).toEqual([below, above]);
      }
    }
  });
});
