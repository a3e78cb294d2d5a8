import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPhaseOf, PreferenceRecord, SUBCATEGORIES } from '@xyp/contracts';
import {
  DEFAULT_PER_CATEGORY,
  DEFAULT_SEED,
  GENERATOR,
  generatePreferenceRecords,
  generatePreferences,
  MAX_PAIR_BYTES,
  oneSidedTokens,
  shortcutMinPairs,
  summarizePreferences,
  TEMPLATES,
} from './generate-preferences';

const ROOT = resolve(__dirname, '../..');
const SHIPPED = join(ROOT, 'data/sample/preferences.jsonl');
const DEFAULTS = { seed: DEFAULT_SEED, perCategory: DEFAULT_PER_CATEGORY };
const CJK = /[\u3400-\u9fff]/;

const text = generatePreferences(DEFAULTS);
const records = text
  .trimEnd()
  .split('\n')
  .map((line) => PreferenceRecord.parse(JSON.parse(line)));
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('generate-preferences', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'xyp-preferences-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('gives the same bytes for the same seed and different pairs for another seed', () => {
    expect(generatePreferences(DEFAULTS)).toBe(text);
    const other = generatePreferences({ ...DEFAULTS, seed: DEFAULT_SEED + 1 });
    expect(other).not.toBe(text);
    const otherPrompts = new Set(other.trimEnd().split('\n').map((line) => PreferenceRecord.parse(JSON.parse(line)).prompt[0].content));
    const shared = records.filter((record) => otherPrompts.has(record.prompt[0].content)).length;
    expect(shared / records.length).toBeLessThan(0.5);
  });

  it('writes one PreferenceRecord per line with a trailing newline, in SUBCATEGORIES order', () => {
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).not.toContain('\n\n');
    expect(records).toHaveLength(SUBCATEGORIES.length * DEFAULT_PER_CATEGORY);
    expect(records.length).toBeGreaterThanOrEqual(1000);
    expect(records.length).toBeLessThanOrEqual(1200);
    const order = [...new Set(records.map((record) => record.category))];
    expect(order).toEqual(SUBCATEGORIES.map((subcategory) => subcategory.id));
  });

  it('covers every subcategory with half Chinese and half English pairs, each in its set and phase', () => {
    for (const subcategory of SUBCATEGORIES) {
      const own = records.filter((record) => record.category === subcategory.id);
      expect(own).toHaveLength(DEFAULT_PER_CATEGORY);
      const zh = own.filter((record) => record.provenance?.['lang'] === 'zh');
      const en = own.filter((record) => record.provenance?.['lang'] === 'en');
      expect(zh).toHaveLength(DEFAULT_PER_CATEGORY / 2);
      expect(en).toHaveLength(DEFAULT_PER_CATEGORY / 2);
      // The language is the prompt's: Chinese prompts have CJK characters, English ones none.
      for (const record of zh) expect(record.prompt[0].content).toMatch(CJK);
      for (const record of en) expect(record.prompt[0].content).not.toMatch(CJK);
      // Every template of the subcategory is used.
      for (const lang of ['zh', 'en'] as const) {
        const used = new Set(own.filter((record) => record.provenance?.['lang'] === lang).map((record) => record.provenance?.['template']));
        expect([...used].sort()).toEqual(Object.keys(TEMPLATES[subcategory.id][lang]).sort());
      }
      for (const record of own) {
        expect(record.set).toBe(subcategory.set);
        expect(record.phase).toBe(defaultPhaseOf(subcategory.set));
      }
    }
  });

  it('gives each pair one user turn, two different assistant turns, a unique id and prompt, and its provenance', () => {
    for (const record of records) {
      expect(record.prompt).toEqual([{ role: 'user', content: expect.any(String) }]);
      expect(record.chosen[0].role).toBe('assistant');
      expect(record.rejected[0].role).toBe('assistant');
      expect(record.chosen[0].content).not.toBe(record.rejected[0].content);
      expect(record.chosen[0].content.trim()).not.toBe('');
      expect(record.rejected[0].content.trim()).not.toBe('');
      expect(record.provenance).toEqual({ generator: GENERATOR, seed: DEFAULT_SEED, template: expect.any(String), lang: expect.stringMatching(/^(zh|en)$/) });
    }
    expect(new Set(records.map((record) => record.id)).size).toBe(records.length);
    expect(new Set(records.map((record) => record.prompt[0].content)).size).toBe(records.length);
  });

  it('keeps prompt plus either response within the byte bound', () => {
    for (const record of records) {
      const prompt = bytes(record.prompt[0].content);
      expect(prompt + bytes(record.chosen[0].content)).toBeLessThanOrEqual(MAX_PAIR_BYTES);
      expect(prompt + bytes(record.rejected[0].content)).toBeLessThanOrEqual(MAX_PAIR_BYTES);
    }
    expect(summarizePreferences(records).maxPairBytes).toBeLessThanOrEqual(MAX_PAIR_BYTES);
  });

  it('makes length no shortcut: chosen is the longer response in about half the pairs, overall and per subcategory', () => {
    const summary = summarizePreferences(records);
    expect(summary.chosenLongerShare).toBeGreaterThanOrEqual(0.35);
    expect(summary.chosenLongerShare).toBeLessThanOrEqual(0.65);
    for (const [category, entry] of Object.entries(summary.byCategory)) {
      const share = entry.chosenLonger / (entry.zh + entry.en);
      expect({ category, ok: share >= 0.3 && share <= 0.7 }).toEqual({ category, ok: true });
    }
    // Another seed keeps the balance too.
    const other = summarizePreferences(generatePreferenceRecords({ ...DEFAULTS, seed: 7 }));
    expect(other.chosenLongerShare).toBeGreaterThanOrEqual(0.35);
    expect(other.chosenLongerShare).toBeLessThanOrEqual(0.65);
  });

  it('has no frequent token that occurs on one side only', () => {
    expect(oneSidedTokens(records, shortcutMinPairs(records.length))).toEqual({ chosenOnly: [], rejectedOnly: [] });
    // The closing phrases of the length balancing land on both sides.
    expect(oneSidedTokens([{ ...records[0], chosen: [{ role: 'assistant', content: 'risk 风险' }], rejected: [{ role: 'assistant', content: 'no' }] }], 1)).toEqual({ chosenOnly: ['risk', '险', '风'], rejectedOnly: ['no'] });
  });

  it('matches the shipped data/sample/preferences.jsonl byte for byte', () => {
    expect(readFileSync(SHIPPED, 'utf8')).toBe(text);
  });

  it('runs as a CLI with --seed, --per-category and --out', () => {
    const out = join(scratch, 'pairs.jsonl');
    const run = spawnSync(process.execPath, ['-r', './tools/runtime/register.js', 'tools/sample-data/generate-preferences.ts', '--seed', '11', '--per-category', '4', '--out', out], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(generatePreferences({ seed: 11, perCategory: 4 }));
    expect(run.stderr).toContain(`${SUBCATEGORIES.length * 4} pairs: finance 32, general 44`);
    expect(run.stderr).toMatch(/chosen longer in [\d.]+% of pairs/);
    expect(spawnSync(process.execPath, ['-r', './tools/runtime/register.js', 'tools/sample-data/generate-preferences.ts', '--per-category', 'x'], { cwd: ROOT, encoding: 'utf8' }).status).toBe(2);
  });
});
