import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ByteTokenizer, DirectorySink, disposeModel, initBackend, initParams, saveModel, type Model } from '@xyp/engine';
import { evaluateMcq, perplexityByCategory, type McqQuestion } from '@xyp/policy-eval';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localPolicyScorer, openPolicyScorer } from './policy-scorer';

/**
 * Hand-made models. With every trunk weight zero (attention and MLP add nothing), the final hidden
 * state is RMSNorm(tok_emb[last token]): the logits depend on the last token only (a bigram model).
 * tok_emb is the unit vector e1 for 'C' and e0 for every other token, so RMSNorm gives √D·e0 or
 * √D·e1, and lm_head rows 0 and 1 (scaled by 1/√D) are the logits after a non-'C' token (L0) and
 * after 'C' (L1):
 *   L0: 'C' 4, 'x' 2, 'a' 1, every other token 0  → greedy writes 'C' after the prompt;
 *   L1: <eot> 4, every other token 0              → and then stops.
 */
const D = 8;
const V = 260;
const EOT = 256;
const byte = (ch: string) => ch.charCodeAt(0);
const L0 = (v: number) => (v === byte('C') ? 4 : v === byte('x') ? 2 : v === byte('a') ? 1 : 0);
const L1 = (v: number) => (v === EOT ? 4 : 0);
const lse = (f: (v: number) => number) => Math.log(Array.from({ length: V }, (_, v) => Math.exp(f(v))).reduce((a, b) => a + b, 0));
const LSE0 = lse(L0);
const LSE1 = lse(L1);
/** log p(token | previous token), from the definition above (float64, independent of the engine). */
const logp = (prev: number, next: number) => (prev === byte('C') ? L1(next) - LSE1 : L0(next) - LSE0);

function setParam(model: Model, name: string, fill: (i: number) => number): void {
  const p = model.params[name];
  const size = p.shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: size }, (_, i) => fill(i));
  const t = tf.tensor(values, p.shape);
  p.assign(t);
  t.dispose();
}

function bigramModel(contextLength = 64, uniform = false): Model {
  const model = initParams({ vocabSize: V, contextLength, layers: 1, width: D, heads: 2, normEps: 1e-9 }, 1);
  for (const name of Object.keys(model.params)) {
    if (/^layers\.\d+\.(wq|wk|wv|wo|w1|w2)$/.test(name)) setParam(model, name, () => 0);
  }
  // tok_emb [V, D]: row v is e1 for 'C', e0 otherwise.
  setParam(model, 'tok_emb', (i) => {
    const v = Math.floor(i / D);
    const d = i % D;
    return d === (v === byte('C') ? 1 : 0) ? 1 : 0;
  });
  // lm_head [D, V]: row 0 = L0/√D, row 1 = L1/√D.
  setParam(model, 'lm_head', (i) => {
    if (uniform) return 0;
    const d = Math.floor(i / V);
    const v = i % V;
    return d === 0 ? L0(v) / Math.sqrt(D) : d === 1 ? L1(v) / Math.sqrt(D) : 0;
  });
  return model;
}

const tokenizer = new ByteTokenizer();
/** Σ log p of `continuation` after a context that ends in a non-'C' token. */
function expectedLoglik(continuation: string, prevToken = byte('z') /* any non-'C' token */): number {
  let prev = prevToken;
  let sum = 0;
  for (const t of tokenizer.encode(continuation)) {
    sum += logp(prev, t);
    prev = t;
  }
  return sum;
}

const q = (id: string, subject: string, options: string[], answer: McqQuestion['answer']): McqQuestion => ({
  id,
  subject,
  question: `以下关于利率的说法，哪一项正确？（第${id}题）`,
  options,
  answer,
  file: `${subject}.csv`,
  line: Number(id) + 1,
});

/**
 * Per option: "a" = 1−LSE0 ≈ −4.77 (best sum among a/xxx/b/d); "xxx" = 3·(2−LSE0) ≈ −11.3 but
 * ≈ −3.77 per character (best acc_norm); "C" = 4−LSE0 ≈ −1.77 best both ways; "b", "d", "e" =
 * −LSE0 each. Greedy generation answers "C".
 *
 *   id  options           answer  acc pick  acc_norm pick  generate ("C")
 *   1   a, xxx, b, d      A       A ✓       B ✗            ✗
 *   2   a, xxx, b, d      B       A ✗       B ✓            ✗
 *   3   a, xxx, b, d      B       A ✗       B ✓            ✗
 *   4   b, d, C, a        C       C ✓       C ✓            ✓
 *   5   b, a, d, e        D       B ✗       B ✗            ✗
 *   6   x, C, b, d        B       B ✓       B ✓            ✗ (says C)
 *   7   a, b, C, d        C       C ✓       C ✓            ✓
 *
 * bank (1-4): acc 2/4, acc_norm 3/4, generate 1/4; tax (5-7): acc 2/3, acc_norm 2/3, generate 1/3.
 */
const QUESTIONS = [
  q('1', 'bank', ['a', 'xxx', 'b', 'd'], 'A'),
  q('2', 'bank', ['a', 'xxx', 'b', 'd'], 'B'),
  q('3', 'bank', ['a', 'xxx', 'b', 'd'], 'B'),
  q('4', 'bank', ['b', 'd', 'C', 'a'], 'C'),
  q('5', 'tax', ['b', 'a', 'd', 'e'], 'D'),
  q('6', 'tax', ['x', 'C', 'b', 'd'], 'B'),
  q('7', 'tax', ['a', 'b', 'C', 'd'], 'C'),
];

describe('localPolicyScorer on a hand-made bigram model', () => {
  let model: Model;
  beforeAll(async () => {
    await initBackend();
    model = bigramModel();
  });
  afterAll(() => disposeModel(model));

  it('logLikelihood: Σ log p of the continuation tokens, the same in any batch size; context cut from the left', async () => {
    const requests = [
      { context: '答案是：', continuation: 'xxx' },
      { context: 'q', continuation: 'Ca' },
      { context: '', continuation: 'a' },
      { context: 'z'.repeat(500), continuation: '利率' },
    ];
    for (const batchSize of [1, 3, 16]) {
      const scores = await localPolicyScorer(model, tokenizer, { batchSize }).logLikelihood(requests);
      expect(scores.map((s) => [s.tokens, s.chars, s.truncated ?? false])).toEqual([
        [3, 3, false],
        [2, 2, false],
        [1, 1, false],
        [6, 2, false],
      ]);
      expect(scores[0].logLikelihood).toBeCloseTo(3 * (2 - LSE0), 4);
      expect(scores[1].logLikelihood).toBeCloseTo(4 - LSE0 + (0 - LSE1), 4);
      // Empty context: the continuation follows <eot> (a non-'C' token).
      expect(scores[2].logLikelihood).toBeCloseTo(1 - LSE0, 4);
      expect(scores[3].logLikelihood).toBeCloseTo(expectedLoglik('利率'), 4);
    }
  });

  it('a continuation longer than the context keeps its last contextLength tokens', async () => {
    const [s] = await localPolicyScorer(model, tokenizer).logLikelihood([{ context: 'q', continuation: 'x'.repeat(100) }]);
    expect(s).toMatchObject({ tokens: 64, chars: 100, truncated: true });
    expect(s.logLikelihood).toBeCloseTo(64 * (2 - LSE0), 3);
  });

  it('conversationLogLikelihood counts assistant tokens only (content and closing <eot>)', async () => {
    const [s] = await localPolicyScorer(model, tokenizer).conversationLogLikelihood([
      [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'question' },
        { role: 'assistant', content: 'Cx' },
      ],
    ]);
    // <assistant> → 'C' (L0), 'C' → 'x' (L1), 'x' → <eot> (L0)
    expect(s.tokens).toBe(3);
    expect(s.logLikelihood).toBeCloseTo(4 - LSE0 + (0 - LSE1) + (0 - LSE0), 4);
  });

  it('generate is greedy: "C", then <eot> ends it; prompts longer than the context are cut from the left', async () => {
    const out = await localPolicyScorer(model, tokenizer, { batchSize: 2 }).generate(['答案是：', 'x', '长'.repeat(200)], { maxTokens: 8 });
    expect(out).toEqual(['C', 'C', 'C']);
  });

  it('MCQ loglik end to end: acc and acc_norm exactly as derived by hand', async () => {
    const result = await evaluateMcq(QUESTIONS, localPolicyScorer(model, tokenizer, { batchSize: 5, name: 'bigram' }), { mode: 'loglik', chunk: 3 });
    expect(result.model).toBe('bigram');
    expect(result.subjects.map((s) => [s.subject, s.questions, s.correct, s.correctNorm])).toEqual([
      ['bank', 4, 2, 3],
      ['tax', 3, 2, 2],
    ]);
    expect(result.items.map((i) => `${i.predicted}${i.predictedNorm}`)).toEqual(['AB', 'AB', 'AB', 'CC', 'BB', 'BB', 'CC']);
    expect(result.micro.acc).toBeCloseTo(4 / 7, 12);
    expect(result.micro.accNorm).toBeCloseTo(5 / 7, 12);
    expect(result.macro.acc).toBeCloseTo((2 / 4 + 2 / 3) / 2, 12);
    expect(result.macro.accNorm).toBeCloseTo((3 / 4 + 2 / 3) / 2, 12);
    expect(result.items[0].logLikelihoods![1]).toBeCloseTo(3 * (2 - LSE0), 4);
  });

  it('MCQ generate end to end (few-shot too): the model answers C to everything', async () => {
    const dev = [q('8', 'bank', ['a', 'b', 'c', 'd'], 'A'), q('9', 'tax', ['a', 'b', 'c', 'd'], 'D')];
    for (const shots of [0, 1]) {
      const result = await evaluateMcq(QUESTIONS, localPolicyScorer(model, tokenizer), { mode: 'generate', shots, dev, maxTokens: 4 });
      expect(result.items.map((i) => i.response)).toEqual(QUESTIONS.map(() => 'C'));
      expect(result.subjects.map((s) => [s.subject, s.questions, s.correct, s.unparsed, s.shots])).toEqual([
        ['bank', 4, 1, 0, shots],
        ['tax', 3, 1, 0, shots],
      ]);
      expect(result.micro.acc).toBeCloseTo(2 / 7, 12);
    }
  });

  it('perplexity: pinned to the bigram definition (rolling windows over long texts, chats on assistant tokens)', async () => {
    const records = [
      { text: 'xxxx', category: 'x' },
      { text: 'x'.repeat(150), category: 'x' },
      { messages: [{ role: 'user' as const, content: 'hi' }, { role: 'assistant' as const, content: 'a' }], category: 'chat' },
    ];
    const r = await perplexityByCategory(records, localPolicyScorer(model, tokenizer, { batchSize: 2 }));
    const x = r.categories.find((c) => c.category === 'x')!;
    // Every 'x' follows <eot> or 'x' (non-'C'): nll = LSE0 − 2 per token, and every token counts.
    expect(x.tokens).toBe(154);
    expect(x.nll).toBeCloseTo(LSE0 - 2, 4);
    expect(x.ppl).toBeCloseTo(Math.exp(LSE0 - 2), 3);
    const chat = r.categories.find((c) => c.category === 'chat')!;
    // <assistant> → 'a', 'a' → <eot>
    expect(chat.tokens).toBe(2);
    expect(chat.nll).toBeCloseTo(-(1 - LSE0 + (0 - LSE0)) / 2, 4);
    expect(r.overall.tokens).toBe(156);
  });
});

describe('perplexity of a uniform model is the vocabulary size', () => {
  it('ppl = 260 per category and overall', async () => {
    await initBackend();
    const model = bigramModel(64, true);
    try {
      const records = [
        { text: '人民币汇率', category: 'zh' },
        { text: 'bond yield '.repeat(10), category: 'en' },
        { messages: [{ role: 'user' as const, content: '什么是久期？' }, { role: 'assistant' as const, content: '债券价格对利率的敏感度。' }], category: 'sft' },
      ];
      const r = await perplexityByCategory(records, localPolicyScorer(model, tokenizer));
      for (const row of [...r.categories, r.overall]) expect(row.ppl).toBeCloseTo(260, 2);
      expect(r.categories.map((c) => [c.category, c.tokens])).toEqual([
        ['en', 110],
        ['sft', tokenizer.encode('债券价格对利率的敏感度。').length + 1],
        ['zh', 15],
      ]);
      expect(r.truncated).toBe(0);
      // The 58-token chat does not fit a 32-token context: cut from the left, its last 32 tokens are scored.
      const short = bigramModel(32, true);
      try {
        const cut = await perplexityByCategory([records[2]], localPolicyScorer(short, tokenizer));
        expect(cut).toMatchObject({ truncated: 1, overall: { tokens: 32 } });
      } finally {
        disposeModel(short);
      }
    } finally {
      disposeModel(model);
    }
  });
});

describe('openPolicyScorer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-policy-scorer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('loads a directory checkpoint, names the scorer by it, and disposes the weights', async () => {
    await initBackend();
    const model = bigramModel();
    await saveModel(new DirectorySink(dir), model);
    disposeModel(model);
    const opened = await openPolicyScorer(dir);
    try {
      expect(opened.scorer.name).toBe(dir);
      expect(await opened.scorer.generate(['答案是：'], { maxTokens: 4 })).toEqual(['C']);
    } finally {
      opened.dispose();
    }
    expect(opened.model.params.lm_head.isDisposed).toBe(true);
  });
});
