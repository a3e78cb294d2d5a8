import { describe, expect, it } from 'vitest';
import { PreferenceRecord } from '@xyp/contracts';
import { createRng } from '@xyp/random';
import { PREFERENCE_COLLECTIONS, type PreferenceCollection, writePreferenceCollections } from './collections';
import { PreferenceReject } from './rejects';

async function* lines(...items: string[]): AsyncGenerator<string> {
  yield* items;
}

/** Distinct words per seed, so that generated pairs are not near duplicates of each other. */
function words(seed: number, n: number): string {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => rng.nextUint32().toString(36)).join(' ');
}

const pair = (i: number, extra: object = {}) => JSON.stringify({ prompt: words(3 * i, 6), chosen: words(3 * i + 1, 8), rejected: words(3 * i + 2, 8), ...extra });

describe('writePreferenceCollections', () => {
  it('writes training records to train and their phase, held-out ones to test only, and rejects as JSON lines', async () => {
    const out = Object.fromEntries(PREFERENCE_COLLECTIONS.map((c) => [c, [] as string[]])) as Record<PreferenceCollection, string[]>;
    const inputs = Array.from({ length: 200 }, (_, i) => pair(i, i % 2 ? { set: 'finance' } : {}));
    const counts = await writePreferenceCollections({
      inputs: [{ name: 'p.jsonl', lines: lines(...inputs, '{bad', pair(0)) }],
      testFraction: 0.3,
      write: (collection, line) => void out[collection].push(line),
    });
    const records = (c: PreferenceCollection) => out[c].map((l) => PreferenceRecord.parse(JSON.parse(l)));
    expect(out.train.length + out.test.length).toBe(200);
    expect(out.train).toHaveLength(counts.train);
    expect(out.test).toHaveLength(counts.test);
    expect(records('pretrain').every((r) => r.phase === 'pretrain')).toBe(true);
    expect(records('finetune').every((r) => r.phase === 'finetune' && r.set === 'finance')).toBe(true);
    expect(out.pretrain.length + out.finetune.length).toBe(out.train.length);
    const testIds = new Set(records('test').map((r) => r.id));
    expect([...records('pretrain'), ...records('finetune')].some((r) => testIds.has(r.id))).toBe(false);
    expect(out.rejects.map((l) => PreferenceReject.parse(JSON.parse(l))).map((r) => [r.line, r.reason])).toEqual([
      [201, 'invalid-json'],
      [202, 'duplicate'],
    ]);
  });

  it('keeps duplicates when dedup is off', async () => {
    const out: string[] = [];
    const counts = await writePreferenceCollections({ inputs: [{ name: 'p', lines: lines(pair(1), pair(1)) }], dedup: false, testFraction: 0, write: (c, l) => void (c === 'train' && out.push(l)) });
    expect(out).toHaveLength(2);
    expect(counts.duplicates).toEqual({ exact: 0, near: 0 });
  });
});
