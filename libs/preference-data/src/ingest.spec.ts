import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedDataFile } from '@xyp/testing';
import { type PreferenceRecord, PreferenceRecord as PreferenceRecordSchema } from '@xyp/contracts';
import { createRng } from '@xyp/random';
import { type IngestOptions, type IngestProgress, ingestPreferences, readPreferenceFile } from './ingest';
import { promptKey } from './normalize';
import type { PreferenceReject } from './rejects';
import type { Split } from './split';

const HH_FILE = sharedDataFile('hh-rlhf/harmless-base-a.jsonl') ?? '';

async function* lines(...items: string[]): AsyncGenerator<string> {
  yield* items;
}

/** Runs an ingest and keeps everything it emitted. */
async function ingest(options: Omit<IngestOptions, 'onRecord' | 'onReject'>) {
  const records: { record: PreferenceRecord; split: Split }[] = [];
  const rejects: PreferenceReject[] = [];
  const counts = await ingestPreferences({ ...options, onRecord: (record, split) => void records.push({ record, split }), onReject: (r) => void rejects.push(r) });
  return { records, rejects, counts };
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'su', 'ta', 'ri', 'po', 've', 'zu', 'bi', 'do', 'fa', 'gu', 'he', 'jo'];

/** `n` pseudo-random words from a seed: texts from different seeds share almost no 5-grams. */
function words(seed: number, n: number): string {
  const rng = createRng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let word = '';
    for (let s = 1 + rng.nextInt(3); s >= 0; s--) word += SYLLABLES[rng.nextInt(SYLLABLES.length)];
    out.push(word);
  }
  return out.join(' ');
}

function generatedPair(i: number, responsesPerPrompt = 1): string {
  const prompt = Math.floor(i / responsesPerPrompt);
  return JSON.stringify({ prompt: `Q${prompt}: ${words(prompt * 7 + 1, 10)}`, chosen: words(i * 7 + 2, 20), rejected: words(i * 7 + 3, 20), category: i % 3 === 0 ? 'finance.calculation' : 'safety' });
}

describe('ingestPreferences: mixed inputs', () => {
  it('keeps every good line, rejects every bad one with its line number, and counts blank lines in numbering', async () => {
    const good = (n: number) => JSON.stringify({ prompt: `question ${n}: ${words(n, 8)}`, chosen: words(n + 100, 12), rejected: words(n + 200, 12) });
    const { records, rejects, counts } = await ingest({
      inputs: [
        {
          name: 'a.jsonl',
          lines: lines(good(1), '{not json', '', good(2), JSON.stringify({ prompt: 'q', chosen: 5, rejected: 'b' }), good(3), '   ', JSON.stringify({ prompt: 'q', chosen: 'x', rejected: 'x' }), good(4)),
        },
        { name: 'b.jsonl', lines: lines(JSON.stringify({ prompt: 'q', chosen: 'a', rejected: 'b', set: 'retail' }), good(5), good(1)) },
      ],
    });
    expect(records.map(({ record }) => record.provenance?.source)).toEqual([
      { file: 'a.jsonl', line: 1 },
      { file: 'a.jsonl', line: 4 },
      { file: 'a.jsonl', line: 6 },
      { file: 'a.jsonl', line: 9 },
      { file: 'b.jsonl', line: 2 },
    ]);
    expect(rejects.map((r) => [r.source, r.line, r.reason])).toEqual([
      ['a.jsonl', 2, 'invalid-json'],
      ['a.jsonl', 5, 'invalid-type'],
      ['a.jsonl', 8, 'identical-responses'],
      ['b.jsonl', 1, 'unknown-set'],
      ['b.jsonl', 3, 'duplicate'],
    ]);
    expect(rejects[4].duplicateOf).toEqual({ source: 'a.jsonl', line: 1, id: records[0].record.id });
    expect(counts).toMatchObject({ lines: 10, blankLines: 2, accepted: 5, duplicates: { exact: 1, near: 0 } });
    expect(counts.rejected.total).toBe(5);
    expect(counts.rejected.byReason).toMatchObject({ 'invalid-json': 1, 'invalid-type': 1, 'identical-responses': 1, 'unknown-set': 1, duplicate: 1, 'near-duplicate': 0 });
    for (const { record } of records) expect(PreferenceRecordSchema.safeParse(record).success).toBe(true);
  });

  it('counts by set, category and phase, overall and per split', async () => {
    const { records, counts } = await ingest({ inputs: [{ name: 'g', lines: lines(...Array.from({ length: 300 }, (_, i) => generatedPair(i))) }], testFraction: 0.2, seed: 3 });
    expect(counts.bySet).toEqual({ finance: 100, general: 200 });
    expect(counts.byCategory).toEqual({ 'finance.calculation': 100, 'general.safety': 200 });
    expect(counts.byPhase).toEqual({ finetune: 100, pretrain: 200 });
    expect(counts.train + counts.test).toBe(300);
    expect(counts.test).toBe(records.filter((r) => r.split === 'test').length);
    expect(counts.splits.test.bySet.finance ?? 0).toBe(records.filter((r) => r.split === 'test' && r.record.set === 'finance').length);
    expect((counts.splits.train.bySet.general ?? 0) + (counts.splits.test.bySet.general ?? 0)).toBe(200);
  });

  it('refuses bad options by name', async () => {
    await expect(ingest({ inputs: [], testFraction: 2 })).rejects.toThrow(/ingestPreferences: testFraction:/);
    // @ts-expect-error: an unknown set is refused at run time too
    await expect(ingest({ inputs: [], defaults: { set: 'retail' } })).rejects.toThrow(/ingestPreferences: defaults\.set:/);
  });
});

describe('ingestPreferences: duplicates', () => {
  const long = words(42, 120);
  const prompt = 'Explain how a floating-rate note resets its coupon.';

  it('rejects an exact duplicate (after normalization) and names the line it repeats', async () => {
    const { records, rejects, counts } = await ingest({
      inputs: [{ name: 'd', lines: lines(JSON.stringify({ prompt, chosen: long, rejected: 'No.' }), JSON.stringify({ prompt: prompt.toUpperCase(), chosen: `  ${long} `, rejected: 'no.' })) }],
    });
    expect(records).toHaveLength(1);
    expect(rejects).toMatchObject([{ line: 2, reason: 'duplicate', duplicateOf: { source: 'd', line: 1 } }]);
    expect(counts.duplicates).toEqual({ exact: 1, near: 0 });
  });

  it('rejects a pair with one word changed in a long response as a near duplicate, and keeps clearly different pairs', async () => {
    const edited = long.split(' ');
    edited[60] = 'changed';
    const { records, rejects, counts } = await ingest({
      inputs: [
        {
          name: 'n',
          lines: lines(
            JSON.stringify({ prompt, chosen: long, rejected: 'No idea.' }),
            JSON.stringify({ prompt, chosen: words(7, 120), rejected: 'No idea.' }),
            JSON.stringify({ prompt: 'What is a swap?', chosen: words(8, 40), rejected: words(9, 40) }),
            JSON.stringify({ prompt, chosen: edited.join(' '), rejected: 'No idea.' }),
          ),
        },
      ],
    });
    expect(records.map((r) => r.record.provenance?.source)).toEqual([
      { file: 'n', line: 1 },
      { file: 'n', line: 2 },
      { file: 'n', line: 3 },
    ]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ line: 4, reason: 'near-duplicate', duplicateOf: { source: 'n', line: 1 } });
    expect(rejects[0].similarity).toBeGreaterThanOrEqual(0.9);
    expect(counts.duplicates).toEqual({ exact: 0, near: 1 });
  });

  it('keeps the edited pair when the threshold is above its similarity', async () => {
    const edited = long.replace(/\S+$/, 'changed');
    const { records } = await ingest({
      inputs: [{ name: 'n', lines: lines(JSON.stringify({ prompt, chosen: long, rejected: 'No.' }), JSON.stringify({ prompt, chosen: edited, rejected: 'No.' })) }],
      nearDuplicateThreshold: 1,
    });
    expect(records).toHaveLength(2);
  });
});

describe('ingestPreferences: split', () => {
  const pairs = Array.from({ length: 3000 }, (_, i) => generatedPair(i, 3));

  it('never puts one prompt on both sides, and is the same for the same seed', async () => {
    const run = (seed: number) => ingest({ inputs: [{ name: 's', lines: lines(...pairs) }], seed });
    const first = await run(11);
    expect(first.counts.accepted).toBe(3000);
    const sides = new Map<string, Set<Split>>();
    for (const { record, split } of first.records) sides.set(promptKey(record.prompt), (sides.get(promptKey(record.prompt)) ?? new Set()).add(split));
    expect(sides.size).toBe(1000);
    expect([...sides.values()].every((s) => s.size === 1)).toBe(true);
    const again = await run(11);
    expect(again.records.map((r) => r.split)).toEqual(first.records.map((r) => r.split));
    const other = await run(12);
    expect(other.records.map((r) => r.split)).not.toEqual(first.records.map((r) => r.split));
  });

  it('holds out about testFraction of a few thousand pairs', async () => {
    const { counts } = await ingest({ inputs: [{ name: 's', lines: lines(...Array.from({ length: 4000 }, (_, i) => generatedPair(i))) }], testFraction: 0.25, seed: 'x' });
    expect(Math.abs(counts.test / 4000 - 0.25)).toBeLessThan(0.03);
  });
});

// The shared data sits beside the checkout on the development machines and CI; elsewhere this says so and skips.
describe.skipIf(HH_FILE === '')('readPreferenceFile: HH-RLHF harmless-base (shared/data)', () => {
  it('finds the shared data file', () => {
    expect(existsSync(HH_FILE)).toBe(true);
  });

  it('accounts for every one of the 1,181 lines, with multi-turn prompts', async () => {
    const { records, rejects, counts } = await readPreferenceFile(HH_FILE, { defaults: { category: 'safety' } });
    expect(counts.lines).toBe(1181);
    expect(records.length + rejects.length).toBe(1181);
    expect(counts.accepted + counts.rejected.total).toBe(1181);
    // Lines 272 and 487 have an empty chosen answer; 1007, 1008 and 1057 are dialogues that fork before the last turn.
    expect(rejects.map((r) => [r.line, r.reason])).toEqual([
      [272, 'empty-response'],
      [487, 'empty-response'],
      [1007, 'no-shared-prompt'],
      [1008, 'no-shared-prompt'],
      [1057, 'no-shared-prompt'],
    ]);
    expect(records.filter((r) => r.prompt.length >= 3).length / records.length).toBeGreaterThan(0.5);
    for (const record of records) {
      expect(record.prompt[record.prompt.length - 1].role).toBe('user');
      expect(record).toMatchObject({ set: 'general', category: 'general.safety', phase: 'pretrain' });
    }
    expect(records[0].prompt[0]).toEqual({ role: 'user', content: 'How do I pick a lock?' });
    expect(records[0].chosen[0].content).toBe('I’ll give you the links.');
  });
});

describe('ingestPreferences: streaming', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xyp-preference-ingest-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('streams 50,000 generated pairs with progress reports, keeping only signatures in memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const used = () => {
      const memory = process.memoryUsage();
      return { heap: memory.heapUsed, all: memory.heapUsed + memory.arrayBuffers };
    };
    async function* generate(n: number): AsyncGenerator<string> {
      for (let i = 0; i < n; i++) yield generatedPair(i);
    }
    gc();
    const before = used();
    const progress: IngestProgress[] = [];
    let peak = { heap: 0, all: 0 };
    let accepted = 0;
    const counts = await ingestPreferences({
      inputs: [{ name: 'generated', lines: generate(50_000) }],
      progressEvery: 5_000,
      onRecord: () => void accepted++,
      onReject: (r) => {
        throw new Error(`unexpected reject ${r.line} ${r.reason}: ${r.message}`);
      },
      onProgress: (p) => {
        progress.push(p);
        gc();
        const now = used();
        peak = { heap: Math.max(peak.heap, now.heap - before.heap), all: Math.max(peak.all, now.all - before.all) };
      },
    });
    gc();
    expect(counts.accepted).toBe(50_000);
    expect(accepted).toBe(50_000);
    expect(progress.map((p) => p.lines)).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * 5_000));
    expect(progress.every((p, i) => i === 0 || p.bytes > progress[i - 1].bytes)).toBe(true);
    expect(progress[progress.length - 1]).toMatchObject({ accepted: 50_000, rejected: 0, bytes: counts.bytes });
    expect(used().all - before.all).toBeLessThan(150 * 1024 * 1024);
    expect(peak.all).toBeLessThan(150 * 1024 * 1024);
    // The dedup state is about 0.5 kB of heap per pair (bucket entries, the exact key, a line
    // reference); keeping the pairs themselves would add well over 1 kB each.
    expect(peak.heap / 50_000).toBeLessThan(900);
  }, 30_000);

  it('reads a file written with CRLF line ends', async () => {
    const file = join(dir, 'crlf.jsonl');
    await writeFile(file, `${generatedPair(1)}\r\n\r\n${generatedPair(2)}\r\n`);
    const { records, counts } = await readPreferenceFile(file);
    expect(records.map((r) => r.provenance?.source)).toEqual([
      { file, line: 1 },
      { file, line: 3 },
    ]);
    expect(counts).toMatchObject({ lines: 2, blankLines: 1 });
  });
});
