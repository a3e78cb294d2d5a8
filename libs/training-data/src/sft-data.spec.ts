import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SftExample } from '@xyp/engine';
import { readSftExamples } from './local-data';
import { type SftConversation, type SftProgress, type SftReject, ingestSft, parseSftLine, sftPromptKey, streamSft, writeSftCollections } from './sft-data';

const SAMPLE = resolve(__dirname, '../../../data/sample/sft.jsonl');

const chat = (user: string, assistant: string, extra: Record<string, unknown> = {}) => JSON.stringify({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }], ...extra });

function* generated(n: number, perPrompt = 1): Generator<string> {
  for (let i = 0; i < n; i++) {
    const prompt = Math.floor(i / perPrompt);
    yield chat(`问题 ${prompt}: 本金${prompt * 7}元，年利率${prompt % 9}%，求利息。`, `回答 ${i}: 利息按公式计算，结果为 ${(i * 13) % 1000} 元。`, { category: ['finance.calculation', '金融百科问答', 'my-own'][i % 3], id: `g-${i}` });
  }
}

describe('parseSftLine: layouts', () => {
  it('reads chat messages with a system prompt, resolves a known category and keeps a user-defined one', () => {
    const line = JSON.stringify({
      id: 'c1',
      category: '金融领域计算',
      source: 'sample',
      messages: [
        { role: 'system', content: '你是金融助手。' },
        { role: 'user', content: '1000元年利率5%复利2年是多少？' },
        { role: 'assistant', content: '1102.50元。' },
        { role: 'user', content: '利息呢？' },
        { role: 'assistant', content: '102.50元。' },
      ],
    });
    const parsed = parseSftLine(line, 1);
    expect(parsed).toMatchObject({ ok: true, conversation: { id: 'c1', category: 'finance.calculation', source: 'sample' } });
    if (parsed.ok) expect(parsed.conversation.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
    expect(parseSftLine(chat('q', 'a', { category: ' my-desk ' }), 2)).toMatchObject({ ok: true, conversation: { category: 'my-desk', id: 'line-2' } });
    expect(parseSftLine(chat('q', 'a', { category: 'Finance Calculation' }), 3)).toMatchObject({ ok: true, conversation: { category: 'finance.calculation' } });
    expect(parseSftLine(chat('q', 'a', { id: 42 }), 3)).toMatchObject({ ok: true, conversation: { id: '42', category: 'uncategorized' } });
    expect(parseSftLine(chat('q', 'a'), 3, 'general.chitchat')).toMatchObject({ ok: true, conversation: { category: 'general.chitchat' } });
  });

  it('converts prompt/response, prompt/completion (strings or message lists) and Alpaca lines to messages', () => {
    const cases: [object, { role: string; content: string }[]][] = [
      [{ prompt: 'What is a bond?', response: 'A loan to an issuer.' }, [{ role: 'user', content: 'What is a bond?' }, { role: 'assistant', content: 'A loan to an issuer.' }]],
      [{ prompt: 'Q', completion: 'A', system: 'Be brief.' }, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }]],
      [
        { prompt: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'P/E?' }], completion: [{ role: 'assistant', content: 'Price over EPS.' }] },
        [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'P/E?' }, { role: 'assistant', content: 'Price over EPS.' }],
      ],
      [{ instruction: '翻译成英文', input: '市盈率', output: 'P/E ratio' }, [{ role: 'user', content: '翻译成英文\n\n市盈率' }, { role: 'assistant', content: 'P/E ratio' }]],
      [{ instruction: '解释久期', input: '', output: '久期衡量利率敏感度。' }, [{ role: 'user', content: '解释久期' }, { role: 'assistant', content: '久期衡量利率敏感度。' }]],
    ];
    for (const [line, messages] of cases) expect(parseSftLine(JSON.stringify(line), 1)).toEqual({ ok: true, conversation: { id: 'line-1', category: 'uncategorized', messages } });
  });
});

describe('ingestSft: rejects', () => {
  const bad: [string, string, string | undefined][] = [
    ['{not json', 'invalid-json', undefined],
    ['[1, 2]', 'invalid-type', '(line)'],
    [JSON.stringify({ messages: 'hello' }), 'invalid-type', 'messages'],
    [JSON.stringify({ messages: [] }), 'empty-messages', 'messages'],
    [JSON.stringify({ messages: ['hi'] }), 'invalid-type', 'messages[0]'],
    [JSON.stringify({ messages: [{ role: 'user', content: 5 }, { role: 'assistant', content: 'a' }] }), 'invalid-type', 'messages[0].content'],
    [JSON.stringify({ messages: [{ role: 'human', content: 'q' }, { role: 'assistant', content: 'a' }] }), 'unknown-role', 'messages[0].role'],
    [JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '  ' }] }), 'empty-content', 'messages[1].content'],
    [JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'system', content: 's' }, { role: 'assistant', content: 'a' }] }), 'misplaced-system', 'messages[1].role'],
    [JSON.stringify({ messages: [{ role: 'system', content: 's' }, { role: 'assistant', content: 'a' }] }), 'first-turn-not-user', 'messages[1].role'],
    [JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'user', content: 'q2' }, { role: 'assistant', content: 'a' }] }), 'roles-not-alternating', 'messages[1].role'],
    [JSON.stringify({ messages: [{ role: 'user', content: 'q' }] }), 'no-assistant', 'messages[0].role'],
    [JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'q2' }] }), 'final-turn-not-assistant', 'messages[2].role'],
    [chat('q', 'a', { category: 7 }), 'invalid-type', 'category'],
    [chat('q', 'a', { category: '' }), 'invalid-type', 'category'],
    [chat('q', 'a', { id: '' }), 'invalid-type', 'id'],
    [JSON.stringify({ text: 'no layout' }), 'missing-field', 'messages'],
    [JSON.stringify({ prompt: 'q' }), 'missing-field', 'response'],
    [JSON.stringify({ prompt: 'q', response: 3 }), 'invalid-type', 'response'],
    [JSON.stringify({ prompt: '', response: 'a' }), 'empty-content', 'prompt'],
    [JSON.stringify({ instruction: 'do', input: 'x' }), 'missing-field', 'output'],
    [JSON.stringify({ instruction: 'do', output: '' }), 'empty-content', 'output'],
    [JSON.stringify({ instruction: 'do', input: 4, output: 'o' }), 'invalid-type', 'input'],
  ];

  it('rejects every bad line with its line number, reason and field, and keeps every good one (blank lines counted in numbering)', async () => {
    const lines = [chat('first question', 'first answer'), '', ...bad.map(([line]) => line), '   ', chat('last question', 'last answer')];
    const { train, heldOut, rejects, counts } = await ingestSft(lines, { source: 'mixed.jsonl' });
    const accepted = [...train, ...heldOut].sort((a, b) => a.line - b.line);
    expect(accepted.map((c) => c.line)).toEqual([1, lines.length]);
    expect(rejects.map((r) => [r.line, r.reason, r.field])).toEqual(bad.map(([, reason, field], i) => [i + 3, reason, field]));
    for (const reject of rejects) {
      expect(reject.source).toBe('mixed.jsonl');
      if (reject.field !== undefined) expect(reject.message.startsWith(`${reject.field}: `)).toBe(true);
    }
    expect(rejects[0].message).toMatch(/^not valid JSON/);
    expect(counts).toMatchObject({ lines: bad.length + 2, blankLines: 2, accepted: 2, rejected: bad.length, duplicates: 0 });
    expect(counts.byReason['invalid-type']).toBe(bad.filter(([, reason]) => reason === 'invalid-type').length);
  });

  it('removes exact duplicates (same messages, whatever the id or category) and names the line they repeat', async () => {
    const lines = [chat('q1', 'a1', { id: 'x' }), chat('q2', 'a2'), chat('q1', 'a1', { id: 'y', category: 'other' }), chat('q1', 'a1 '), chat('q2', 'a2')];
    const { train, heldOut, rejects, counts } = await ingestSft(lines);
    expect([...train, ...heldOut].map((c) => c.line).sort()).toEqual([1, 2, 4]);
    expect(rejects).toEqual([
      { source: 'input', line: 3, reason: 'duplicate', message: 'duplicate of line 1', duplicateOf: 1 },
      { source: 'input', line: 5, reason: 'duplicate', message: 'duplicate of line 2', duplicateOf: 2 },
    ]);
    expect(counts).toMatchObject({ accepted: 3, rejected: 2, duplicates: 2 });
  });

  it('refuses bad options by name and an unreadable file by path', async () => {
    await expect(ingestSft([], { heldOutFraction: 2 })).rejects.toThrow(/ingestSft: heldOutFraction:/);
    await expect(ingestSft('/nonexistent/sft.jsonl')).rejects.toThrow(/cannot read \/nonexistent\/sft\.jsonl: ENOENT/);
  });
});

describe('ingestSft: split', () => {
  const lines = [...generated(3000, 3)];

  it('never puts one first user message on both sides, and is the same for the same seed', async () => {
    const run = (seed: number) => ingestSft(lines, { seed, ensureHeldOutPerCategory: false });
    const first = await run(5);
    expect(first.counts.accepted).toBe(3000);
    const sides = new Map<string, Set<string>>();
    for (const [side, list] of [['train', first.train], ['heldOut', first.heldOut]] as const) for (const c of list) sides.set(sftPromptKey(c.messages), (sides.get(sftPromptKey(c.messages)) ?? new Set()).add(side));
    expect(sides.size).toBe(1000);
    expect([...sides.values()].every((s) => s.size === 1)).toBe(true);
    const again = await run(5);
    expect(again.heldOut.map((c) => c.id)).toEqual(first.heldOut.map((c) => c.id));
    const other = await run(6);
    expect(other.heldOut.map((c) => c.id)).not.toEqual(first.heldOut.map((c) => c.id));
  });

  it('holds out about heldOutFraction of 1,000 lines and reports per-category counts on each side', async () => {
    const { train, heldOut, counts } = await ingestSft(generated(1000), { heldOutFraction: 0.2, seed: 'x' });
    expect(Math.abs(heldOut.length / 1000 - 0.2)).toBeLessThan(0.04);
    expect(counts.train + counts.heldOut).toBe(1000);
    expect(counts.heldOut).toBe(heldOut.length);
    expect(Object.keys(counts.byCategory).sort()).toEqual(['finance.calculation', 'finance.encyclopedia', 'my-own']);
    for (const [category, tally] of Object.entries(counts.byCategory)) {
      expect(tally.train).toBe(train.filter((c) => c.category === category).length);
      expect(tally.heldOut).toBe(heldOut.filter((c) => c.category === category).length);
    }
    const defaultFraction = await ingestSft(generated(1000));
    expect(Math.abs(defaultFraction.counts.heldOut / 1000 - 0.1)).toBeLessThan(0.03);
  });

  it('gives a small category a held-out conversation without splitting a first user message, and only when it has two prompts', async () => {
    // Three tiny categories, all on the train side under the pure hash split at this fraction and seed.
    const tiny = [chat('alpha one', 'a'), chat('alpha two', 'b'), chat('alpha two', 'c'), chat('beta only', 'd'), chat('beta only', 'e'), chat('gamma one', 'f')].map((line, i) =>
      JSON.stringify({ ...JSON.parse(line), category: ['alpha', 'alpha', 'alpha', 'beta', 'beta', 'gamma'][i] }),
    );
    const pure = await ingestSft(tiny, { heldOutFraction: 0.01, seed: 1, ensureHeldOutPerCategory: false });
    expect(pure.heldOut).toEqual([]);
    const { train, heldOut, counts } = await ingestSft(tiny, { heldOutFraction: 0.01, seed: 1 });
    // alpha has two first user messages: one of them (with all its conversations) is held out; beta has one, gamma one conversation.
    expect(counts.byCategory).toEqual({ alpha: { train: expect.any(Number), heldOut: expect.any(Number) }, beta: { train: 2, heldOut: 0 }, gamma: { train: 1, heldOut: 0 } });
    expect(counts.byCategory.alpha.heldOut).toBeGreaterThanOrEqual(1);
    expect(counts.byCategory.alpha.train).toBeGreaterThanOrEqual(1);
    expect(counts.promoted).toBe(counts.byCategory.alpha.heldOut);
    const heldKeys = new Set(heldOut.map((c) => sftPromptKey(c.messages)));
    expect(train.some((c) => heldKeys.has(sftPromptKey(c.messages)))).toBe(false);
    expect((await ingestSft(tiny, { heldOutFraction: 0.01, seed: 1 })).heldOut).toEqual(heldOut);
  });
});

describe('writeSftCollections and the sample', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xyp-sft-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads data/sample/sft.jsonl with zero rejects, at least 8 categories, held-out conversations in each', async () => {
    const result = await ingestSft(SAMPLE);
    expect(result.rejects).toEqual([]);
    expect(result.counts.lines).toBeGreaterThanOrEqual(800);
    expect(result.counts.lines).toBeLessThanOrEqual(1000);
    const categories = Object.keys(result.counts.byCategory);
    expect(categories.length).toBeGreaterThanOrEqual(8);
    for (const tally of Object.values(result.counts.byCategory)) {
      expect(tally.train).toBeGreaterThan(0);
      expect(tally.heldOut).toBeGreaterThan(0);
    }
    expect(result.counts.promoted).toBe(0);
    // Structurally the engine's example type.
    const examples: SftExample[] = result.train;
    expect(examples.every((e) => e.messages[e.messages.length - 1].role === 'assistant')).toBe(true);
  });

  it('writes train.jsonl, held-out.jsonl and rejects.jsonl that the engine readers accept', async () => {
    const input = join(dir, 'in.jsonl');
    await writeFile(input, [chat('q1', 'a1', { category: 'finance.calculation', id: 'one' }), '{oops', ...generated(200)].join('\n'));
    const result = await ingestSft(input, { heldOutFraction: 0.3 });
    const paths = await writeSftCollections(result, join(dir, 'out'));
    expect(paths).toEqual({ train: join(dir, 'out', 'train.jsonl'), heldOut: join(dir, 'out', 'held-out.jsonl'), rejects: join(dir, 'out', 'rejects.jsonl') });
    const train = await readSftExamples(paths.train);
    const heldOut = await readSftExamples(paths.heldOut);
    expect(train.length).toBe(result.train.length);
    expect(heldOut.length).toBe(result.heldOut.length);
    expect(train.length + heldOut.length).toBe(201);
    const firstTrain = JSON.parse((await readFile(paths.train, 'utf8')).split('\n')[0]) as SftConversation;
    expect(Object.keys(firstTrain).sort()).toEqual(['category', 'id', 'messages']);
    const rejects = (await readFile(paths.rejects, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as SftReject);
    expect(rejects).toMatchObject([{ source: input, line: 2, reason: 'invalid-json' }]);
  });
});

describe('streamSft: streaming', () => {
  it('streams 50,000 lines with progress reports, keeping only the duplicate index in memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const used = () => {
      const memory = process.memoryUsage();
      return memory.heapUsed + memory.arrayBuffers;
    };
    async function* lines(n: number): AsyncGenerator<string> {
      for (const line of generated(n)) yield line;
    }
    gc();
    const before = used();
    const progress: SftProgress[] = [];
    let peak = 0;
    let seen = 0;
    let held = 0;
    const counts = await streamSft(lines(50_000), {
      progressEvery: 5_000,
      onConversation: (_conversation, side) => {
        seen++;
        if (side === 'heldOut') held++;
      },
      onReject: (r) => {
        throw new Error(`unexpected reject ${r.line} ${r.reason}: ${r.message}`);
      },
      onProgress: (p) => {
        progress.push(p);
        gc();
        peak = Math.max(peak, used() - before);
      },
    });
    expect(counts.accepted).toBe(50_000);
    expect(seen).toBe(50_000);
    expect(counts.heldOut).toBe(held);
    expect(progress.map((p) => p.lines)).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * 5_000));
    expect(progress.every((p, i) => i === 0 || p.bytes > progress[i - 1].bytes)).toBe(true);
    expect(progress[progress.length - 1]).toMatchObject({ accepted: 50_000, rejected: 0, bytes: counts.bytes });
    // The duplicate index is a 22-character digest and a line number per conversation (~150 bytes);
    // keeping the conversations (~200 bytes of text each, as UTF-16 strings and objects) would be far more.
    expect(peak).toBeLessThan(50 * 1024 * 1024);
    expect(peak / 50_000).toBeLessThan(400);
  });
});
