import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SUBCATEGORIES } from '@xyp/contracts';
import { ingestSft } from '@xyp/training-data';
import {
  bondPrice,
  cagr,
  compoundValue,
  DEFAULT_PER_CATEGORY,
  DEFAULT_SEED,
  generateSft,
  generateSftConversations,
  MAX_RESPONSE_CHARS,
  MIN_RESPONSE_CHARS,
  monthlyPayment,
  type SampleConversation,
  simpleValue,
  summarizeSft,
  TEMPLATES,
  yieldToMaturity,
} from './generate-sft';

const ROOT = resolve(__dirname, '../..');
const SHIPPED = join(ROOT, 'data/sample/sft.jsonl');
const DEFAULTS = { seed: DEFAULT_SEED, perCategory: DEFAULT_PER_CATEGORY };
const CJK = /[\u3400-\u9fff]/;

const text = generateSft(DEFAULTS);
const conversations = text
  .trimEnd()
  .split('\n')
  .map((line) => JSON.parse(line) as SampleConversation);
const categories = Object.keys(TEMPLATES);
const last = (c: SampleConversation) => c.messages[c.messages.length - 1].content;
const firstUser = (c: SampleConversation) => c.messages.find((m) => m.role === 'user')?.content ?? '';

/** Each calculation prompt → the answer's number recomputed from the prompt's numbers, without the generator's formulas. */
const CALCULATION_CHECKS: { prompt: RegExp; answer: RegExp; expected(n: number[]): number; tolerance: number }[] = [
  { prompt: /将(\d+)元.*?(\d+(?:\.\d+)?)%.*按年复利计息，(\d+)年后/, answer: /本息合计约(\d+\.\d{2})元/, expected: ([p, r, n]) => p * Math.pow(1 + r / 100, n), tolerance: 0.006 },
  { prompt: /一笔(\d+)元的(\d+)年期定期存款，年利率(\d+(?:\.\d+)?)%/, answer: /到期本息合计(\d+\.\d{2})元/, expected: ([p, n, r]) => p + (p * r * n) / 100, tolerance: 0.006 },
  { prompt: /股价(\d+\.\d+)元，每股收益(\d+\.\d+)元/, answer: /市盈率约为(\d+\.\d{2})倍/, expected: ([price, eps]) => price / eps, tolerance: 0.006 },
  { prompt: /票面利率(\d+(?:\.\d+)?)%，每年付息一次，现价(\d+\.\d+)元/, answer: /当期收益率约为(\d+\.\d{2})%/, expected: ([c, price]) => (c / price) * 100, tolerance: 0.006 },
  { prompt: /每股派发现金红利(\d+\.\d+)元，股价(\d+\.\d+)元/, answer: /股息率约为(\d+\.\d{2})%/, expected: ([d, price]) => (d / price) * 100, tolerance: 0.006 },
];

describe('generate-sft', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'xyp-sft-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('gives the same bytes for the same seed and different conversations for another seed', () => {
    expect(generateSft(DEFAULTS)).toBe(text);
    const other = generateSft({ ...DEFAULTS, seed: DEFAULT_SEED + 1 });
    const otherPrompts = new Set(other.trimEnd().split('\n').map((line) => firstUser(JSON.parse(line) as SampleConversation)));
    expect(conversations.filter((c) => otherPrompts.has(firstUser(c))).length / conversations.length).toBeLessThan(0.5);
  });

  it('writes 800–1,000 conversations, one per line, in at least 8 subcategories (all 8 finance ones), under 1.5 MB', () => {
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).not.toContain('\n\n');
    expect(conversations).toHaveLength(categories.length * DEFAULT_PER_CATEGORY);
    expect(conversations.length).toBeGreaterThanOrEqual(800);
    expect(conversations.length).toBeLessThanOrEqual(1000);
    expect(Buffer.byteLength(text)).toBeLessThan(1.5e6);
    expect([...new Set(conversations.map((c) => c.category))]).toEqual(categories);
    expect(categories.length).toBeGreaterThanOrEqual(8);
    const ids = new Set(SUBCATEGORIES.map((s) => s.id));
    expect(categories.every((category) => ids.has(category))).toBe(true);
    for (const s of SUBCATEGORIES.filter((s) => s.set === 'finance')) expect(categories).toContain(s.id);
    for (const c of conversations) {
      expect(Object.keys(c)).toEqual(['id', 'category', 'messages', 'source']);
      expect(c.source).toBe('sample');
    }
  });

  it('gives unique ids and first user messages, mostly Chinese, final responses of 60–300 characters', () => {
    expect(new Set(conversations.map((c) => c.id)).size).toBe(conversations.length);
    expect(new Set(conversations.map(firstUser)).size).toBe(conversations.length);
    for (const c of conversations) {
      const n = Array.from(last(c)).length;
      expect({ id: c.id, ok: n >= MIN_RESPONSE_CHARS && n <= MAX_RESPONSE_CHARS }).toEqual({ id: c.id, ok: true });
      for (const m of c.messages) expect(Array.from(m.content).length).toBeLessThanOrEqual(MAX_RESPONSE_CHARS);
    }
    expect(conversations.filter((c) => CJK.test(firstUser(c))).length / conversations.length).toBeGreaterThan(0.95);
  });

  it('has system prompts in a few conversations and multi-turn dialogues for 日常交流', () => {
    const summary = summarizeSft(conversations);
    const withSystem = conversations.filter((c) => c.messages[0].role === 'system').length;
    expect(withSystem).toBeGreaterThan(20);
    expect(withSystem / conversations.length).toBeLessThan(0.15);
    expect(summary.byCategory['general.chitchat'].multiTurn).toBe(DEFAULT_PER_CATEGORY);
    // Difficulty by construction: regular categories repeat answer skeletons, free-form ones do not.
    expect(summary.byCategory['finance.encyclopedia'].distinctResponses).toBeLessThan(20);
    expect(summary.byCategory['finance.event-analysis'].distinctResponses).toBe(DEFAULT_PER_CATEGORY);
  });

  it('passes the SFT ingest with zero rejects', async () => {
    const result = await ingestSft(text.trimEnd().split('\n'));
    expect(result.rejects).toEqual([]);
    expect(result.counts.accepted).toBe(conversations.length);
    expect(Object.keys(result.counts.byCategory)).toEqual(categories);
  });

  it('computes the formulas correctly', () => {
    expect(compoundValue(10_000, 0.05, 3)).toBeCloseTo(11_576.25, 6);
    expect(simpleValue(10_000, 0.03, 2)).toBeCloseTo(10_600, 6);
    expect(bondPrice(100, 0.05, 5, 0.05)).toBeCloseTo(100, 9);
    expect(yieldToMaturity(100, 0.05, 5, 100)).toBeCloseTo(0.05, 9);
    expect(yieldToMaturity(100, 0.04, 3, bondPrice(100, 0.04, 3, 0.061))).toBeCloseTo(0.061, 9);
    // 1,000,000 yuan over 30 years at 4.9%: the well-known 5,307.27 a month.
    expect(monthlyPayment(1_000_000, 0.049, 30)).toBeCloseTo(5307.27, 2);
    expect(cagr(100, 200, 1)).toBeCloseTo(1, 12);
    expect(cagr(100, 121, 2)).toBeCloseTo(0.1, 12);
  });

  it('puts correctly computed numbers in every calculation answer', () => {
    const own = conversations.filter((c) => c.category === 'finance.calculation');
    expect(own).toHaveLength(DEFAULT_PER_CATEGORY);
    const numbers = (match: RegExpMatchArray) => match.slice(1).map(Number);
    for (const c of own) {
      const prompt = firstUser(c);
      const answer = last(c);
      const check = CALCULATION_CHECKS.find((k) => k.prompt.test(prompt));
      if (check) {
        const got = Number(answer.match(check.answer)?.[1]);
        expect({ prompt, diff: Math.abs(got - check.expected(numbers(prompt.match(check.prompt)!))) < check.tolerance }).toEqual({ prompt, diff: true });
        continue;
      }
      // The other answers are checked by the inverse relation: the stated result reproduces the prompt's figure.
      let m: RegExpMatchArray | null;
      if ((m = prompt.match(/票面利率(\d+(?:\.\d+)?)%、每年付息、剩余(\d+)年到期的债券，现价(\d+\.\d+)元/))) {
        const [coupon, years, price] = numbers(m);
        const y = Number(answer.match(/到期收益率约为(-?\d+\.\d{2})%/)?.[1]);
        let pv = 0;
        for (let t = 1; t <= years; t++) pv += coupon / Math.pow(1 + y / 100, t);
        pv += 100 / Math.pow(1 + y / 100, years);
        expect({ prompt, ok: Math.abs(pv - price) < 0.05 }).toEqual({ prompt, ok: true });
      } else if ((m = prompt.match(/贷款(\d+)万元，年利率(\d+(?:\.\d+)?)%，期限(\d+)年/))) {
        const [wan, rate, years] = numbers(m);
        const payment = Number(answer.match(/月供约(\d+\.\d{2})元/)?.[1]);
        const i = rate / 1200;
        const present = (payment * (1 - Math.pow(1 + i, -years * 12))) / i;
        expect({ prompt, ok: Math.abs(present - wan * 10_000) < 5 }).toEqual({ prompt, ok: true });
      } else if ((m = prompt.match(/营收从(\d+)亿元增长到(\d+)亿元，用了(\d+)年/))) {
        const [start, end, years] = numbers(m);
        const g = Number(answer.match(/年复合增长率约为(\d+\.\d{2})%/)?.[1]);
        expect({ prompt, ok: Math.abs(start * Math.pow(1 + g / 100, years) - end) < end * 0.0005 }).toEqual({ prompt, ok: true });
      } else {
        throw new Error(`no check for calculation prompt: ${prompt}`);
      }
    }
  });

  it('matches the shipped data/sample/sft.jsonl byte for byte', () => {
    expect(readFileSync(SHIPPED, 'utf8')).toBe(text);
  });

  it('runs as a CLI with --seed, --per-category and --out', () => {
    const out = join(scratch, 'sft.jsonl');
    const run = spawnSync(process.execPath, ['-r', './tools/runtime/register.js', 'tools/sample-data/generate-sft.ts', '--seed', '11', '--per-category', '3', '--out', out], { cwd: ROOT, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(generateSft({ seed: 11, perCategory: 3 }));
    expect(generateSftConversations({ seed: 11, perCategory: 3 })).toHaveLength(categories.length * 3);
    expect(run.stderr).toContain(`wrote ${categories.length * 3} conversations`);
    expect(spawnSync(process.execPath, ['-r', './tools/runtime/register.js', 'tools/sample-data/generate-sft.ts', '--per-category', 'x'], { cwd: ROOT, encoding: 'utf8' }).status).toBe(2);
  });
});
