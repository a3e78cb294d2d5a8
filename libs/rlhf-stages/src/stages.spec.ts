/**
 * The RLHF stage runners: prompt files, the reference judge, the PPO draws by ratios, the improve
 * step's wiring of tiers → grid → KL → stop, and the evaluation on real (tiny) engine checkpoints.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStoreSink, checkpointManifest, disposeModel, initBackend, initParams, saveModel } from '@xyp/engine';
import { LocalEngine, openPolicyScorer, openTextReward } from '@xyp/local-engine';
import { applyPeiGrid } from '@xyp/rlhf';
import { LocalDirectoryStore } from '@xyp/storage';
import { annotationExport, parseHumanVerdicts, runEvaluation } from './evaluate';
import { alignmentRates, improveRound } from './improve';
import { drawPrompts, readRoundRatios } from './ppo';
import { readRlhfPrompts, type RlhfPrompt } from './prompts';
import { bigramF1, referenceVerdict } from './reference-judge';

const dir = mkdtempSync(join(tmpdir(), 'xyp-rlhf-stages-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, lines: string[]) => {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n'));
  return path;
};

describe('readRlhfPrompts', () => {
  it('reads prompt lines and SFT chat lines, names every reject with its line, and counts other subdomains', async () => {
    const path = file('prompts.jsonl', [
      JSON.stringify({ prompt: '利率上升对债券有何影响？', subdomain: 'finance.understanding', reference: '债券价格下跌。' }),
      JSON.stringify({ id: 'c1', category: 'finance.calculation', messages: [{ role: 'system', content: 's' }, { role: 'user', content: '1+1?' }, { role: 'assistant', content: '2' }] }),
      JSON.stringify({ prompt: 'hello', subdomain: 'general.chitchat' }),
      '{broken',
      JSON.stringify({ prompt: 'no subdomain' }),
      JSON.stringify({ prompt: '  ', subdomain: 'finance.encyclopedia' }),
      JSON.stringify({ category: 'finance.generation', messages: [{ role: 'assistant', content: 'x' }] }),
    ]);
    const read = await readRlhfPrompts(path, { subdomainPrefix: 'finance.' });
    expect(read.prompts).toEqual([
      { id: 'line-1', prompt: '利率上升对债券有何影响？', subdomain: 'finance.understanding', reference: '债券价格下跌。' },
      { id: 'c1', prompt: '1+1?', subdomain: 'finance.calculation', reference: '2' },
    ]);
    expect(read.skipped).toBe(1);
    expect(read.rejects.map((r) => [r.line, r.reason.split(' (')[0]])).toEqual([
      [4, 'not valid JSON'],
      [5, 'subdomain: missing or empty'],
      [6, 'prompt: missing or empty'],
      [7, 'messages: no user turn'],
    ]);
    expect(read.lines).toBe(7);
  });
});

describe('the reference judge', () => {
  it('scores character-bigram F1 by hand', () => {
    // ab bc cd vs ab bc ce: overlap 2, P = R = 2/3.
    expect(bigramF1('abcd', 'abce')).toBeCloseTo(2 / 3, 12);
    // 利率 率上 上升 vs 利率 率下 下降: overlap 1 → F1 1/3.
    expect(bigramF1('利率上升', '利率下降')).toBeCloseTo(1 / 3, 12);
    // Repeated bigrams count with multiplicity: aa aa vs aa: overlap 1, P 1/2, R 1 → 2/3.
    expect(bigramF1('aaa', 'aa')).toBeCloseTo(2 / 3, 12);
    expect(bigramF1('', 'ab')).toBe(0);
  });

  it('prefers the response closer to the reference, beyond the tie margin, in either order', () => {
    expect(referenceVerdict('abcd', 'wxyz', 'abce', 0.02)).toBe('first');
    expect(referenceVerdict('wxyz', 'abcd', 'abce', 0.02)).toBe('second');
    // abcf (ab bc cf) overlaps the reference as much as abcd: equal F1, a tie; so is a gap within the margin.
    expect(referenceVerdict('abcd', 'abcf', 'abce', 0.02)).toBe('tie');
    expect(referenceVerdict('abcd', 'abzz', 'abce', 0.5)).toBe('tie');
  });
});

describe('PPO prompt draws by the round ratios', () => {
  const prompts: RlhfPrompt[] = [
    ...['a1', 'a2', 'a3'].map((id) => ({ id, prompt: id, subdomain: 'a' })),
    ...['b1', 'b2'].map((id) => ({ id, prompt: id, subdomain: 'b' })),
  ];

  it('splits the draws by largest remainder, cycles a subdomain whose prompts run out, and is seeded', () => {
    const { draws, bySubdomain } = drawPrompts(prompts, { a: 0.75, b: 0.25 }, 10, 3);
    // 7.5 and 2.5: one remainder each, the tie broken by name → a 8, b 2.
    expect(bySubdomain).toEqual({ a: 8, b: 2 });
    expect(draws.filter((p) => p.subdomain === 'a')).toHaveLength(8);
    // 8 draws of 3 prompts: every prompt at least twice, none more than three times.
    const counts = ['a1', 'a2', 'a3'].map((id) => draws.filter((p) => p.id === id).length);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...counts)).toBeLessThanOrEqual(3);
    expect(drawPrompts(prompts, { a: 0.75, b: 0.25 }, 10, 3).draws.map((p) => p.id)).toEqual(draws.map((p) => p.id));
    expect(drawPrompts(prompts, { a: 0.75, b: 0.25 }, 10, 4).draws.map((p) => p.id)).not.toEqual(draws.map((p) => p.id));
  });

  it('refuses a ratio for a subdomain without prompts, and bad ratios files', () => {
    expect(() => drawPrompts(prompts, { a: 0.5, c: 0.5 }, 4, 1)).toThrow('rlhf.ppo: ratios: subdomain c has a ratio but no prompt');
    expect(() => readRoundRatios('{"ratios": {"a": 1}}', 'ratios.json')).toThrow('ratios.json: kl: must be a number >= 0');
    expect(() => readRoundRatios('{"ratios": {"a": -1}, "kl": 0.1}', 'ratios.json')).toThrow('ratios.json: ratios.a: must be a number >= 0');
    expect(readRoundRatios('{"ratios": {"a": 1}, "kl": 0.1}', 'r')).toEqual({ ratios: { a: 1 }, kl: 0.1 });
  });
});

describe('improveRound: tiers → grid → KL → stop', () => {
  const base = {
    round: 1,
    maxRounds: 3,
    ratios: { a: 1 / 3, b: 1 / 3, c: 1 / 3 },
    kl: 0.1,
    ppoTiers: { mode: 'fixed' as const, bad: -0.05, good: 0.05 },
    rmTiers: { mode: 'quantile' as const, low: 1 / 3, high: 2 / 3 },
    klFactor: 0.5,
    klMin: 0.005,
    epsilon: 0.01,
  };

  it('tiers the gains and the alignment, applies the grid and halves the KL', () => {
    const out = improveRound({ ...base, gains: { a: 0.2, b: 0, c: -0.3 }, alignment: { a: 0.9, b: 0.5, c: 0.2 } });
    expect(out.ppo.tiers).toEqual({ a: 'good', b: 'mid', c: 'bad' });
    expect(out.rm.tiers).toEqual({ a: 'good', b: 'mid', c: 'bad' });
    // (good, good) hold, (mid, mid) hold, (bad, bad) ↓↓ ×0.6: c 1/3 → 0.2, then ÷ (2/3 + 0.2).
    expect(out.grid.ratios.c).toBeCloseTo(0.2 / (2 / 3 + 0.2), 12);
    expect(out.grid.ratios.a).toBeCloseTo(1 / 3 / (2 / 3 + 0.2), 12);
    expect(out.grid).toEqual(applyPeiGrid(base.ratios, out.ppo.tiers, out.rm.tiers, {}));
    expect(out.kl).toMatchObject({ before: 0.1, after: 0.05 });
    expect(out.decision.continue).toBe(true);
  });

  it('stops when no subdomain gains, and names a subdomain without an alignment rate', () => {
    const out = improveRound({ ...base, gains: { a: 0, b: -0.1, c: null }, alignment: { a: 0.9, b: 0.5, c: 0.2 } });
    expect(out.decision.continue).toBe(false);
    expect(out.decision.conditions).toContain('no-gain');
    expect(out.notes).toEqual(['c: no judged pair this round; its PPO gain counts as 0']);
    expect(() => improveRound({ ...base, gains: { a: 0.1, b: 0.1, c: 0.1 }, alignment: { a: 0.9, b: 0.5 } })).toThrow(/subdomain c has no UFRM alignment rate/);
  });

  it('reads the alignment rates of a variant from reward.evaluate', () => {
    const json = { variants: [{ name: 'bt-only', summary: { categories: [{ category: 'a', mean: 0.1 }] } }, { name: 'ufrm', summary: { categories: [{ category: 'a', mean: 0.8 }] } }] };
    expect(alignmentRates(json)).toEqual({ a: 0.8 });
    expect(alignmentRates(json, 'bt-only')).toEqual({ a: 0.1 });
    expect(() => alignmentRates({})).toThrow('alignment.json: no variants');
  });
});

describe('runEvaluation on tiny engine checkpoints', () => {
  const store = new LocalDirectoryStore(join(dir, 'store'));
  beforeAll(async () => {
    await initBackend();
    for (const [id, valueHead, seed] of [['tiny/engine.lm', false, 7], ['tiny/engine.rm', true, 7], ['other/engine.lm', false, 8]] as const) {
      const [runId, stage] = id.split('/');
      const model = initParams({ vocabSize: 260, contextLength: 64, layers: 1, width: 16, heads: 2, lmHead: !valueHead, valueHead }, seed);
      const sink = new ArtifactStoreSink(store, runId, stage);
      await saveModel(sink, model);
      await store.commitManifest(checkpointManifest(sink));
      disposeModel(model);
    }
  });

  it('judges in both orders, lets a human verdict win, skips a prompt without a reference, and measures KL 0 against itself', async () => {
    const engine = new LocalEngine({ store });
    const reward = await openTextReward('tiny/engine.rm', store);
    const policy = await openPolicyScorer('tiny/engine.lm', store);
    const reference = await openPolicyScorer('tiny/engine.lm', store);
    try {
      const prompts: RlhfPrompt[] = [
        { id: 'p1', prompt: 'rate?', subdomain: 'finance.a', reference: 'five' },
        { id: 'p2', prompt: 'tax?', subdomain: 'finance.a', reference: 'ten' },
        { id: 'p3', prompt: 'bond?', subdomain: 'finance.b' },
      ];
      const run = { policy: 'tiny/engine.lm', baseline: 'tiny/engine.lm', policyScorer: policy.scorer, referenceScorer: reference.scorer, reward: reward.reward, prompts, maxTokens: 6, temperature: 0, klSamples: 3, klMaxTokens: 6, seed: 1, tieMargin: 0.02 };
      const out = await runEvaluation(engine, { ...run, human: new Map([['p2', 'win' as const]]) });
      expect(out.pairs.map((p) => [p.id, p.outcome, p.judge])).toEqual([
        ['p1', 'tie', 'reference-f1'],
        ['p2', 'win', 'human'],
        ['p3', 'skip', 'none'],
      ]);
      // The same greedy model on both sides: the same responses, a tie by the reference judge, KL 0, no UFRM gain.
      expect(out.pairs[0].policyResponse).toBe(out.pairs[0].baselineResponse);
      expect(out.overall.kl).toBeCloseTo(0, 9);
      expect(out.overall.scoreGain).toBeCloseTo(0, 9);
      expect(out.bySubdomain['finance.a']).toMatchObject({ win: 1, tie: 1, loss: 0, skip: 0, n: 2, netWinRate: 0.5 });
      expect(out.bySubdomain['finance.b']).toMatchObject({ skip: 1, n: 0, netWinRate: null });
      // Deterministic for a seed.
      const again = await runEvaluation(engine, run);
      expect(again.pairs.map((p) => p.policyResponse)).toEqual(out.pairs.map((p) => p.policyResponse));
      const exported = annotationExport(out.pairs);
      expect(exported.csv.split('\n')[0]).toBe('id,subdomain,prompt,reference,response_a_policy,response_b_sft,verdict');
      expect(exported.jsonl.trim().split('\n')).toHaveLength(3);
    } finally {
      reward.dispose();
      policy.dispose();
      reference.dispose();
    }
  });

  it('measures the KL on responses sampled from the policy at temperature 1: per prompt the mean over its samples of Σ log π − log π_ref, per response and per token', async () => {
    const engine = new LocalEngine({ store });
    const reward = await openTextReward('tiny/engine.rm', store);
    const policy = await openPolicyScorer('other/engine.lm', store);
    const reference = await openPolicyScorer('tiny/engine.lm', store);
    try {
      const prompts: RlhfPrompt[] = [
        { id: 'p1', prompt: 'rate?', subdomain: 'finance.a', reference: 'five' },
        { id: 'p2', prompt: 'yield?', subdomain: 'finance.a', reference: 'six' },
      ];
      const out = await runEvaluation(engine, { policy: 'other/engine.lm', baseline: 'tiny/engine.lm', policyScorer: policy.scorer, referenceScorer: reference.scorer, reward: reward.reward, prompts, maxTokens: 6, temperature: 0, klSamples: 5, klMaxTokens: 8, seed: 1, tieMargin: 0.02 });
      // The samples by hand: 5 per prompt at temperature 1, each scored as the assistant turn by both models.
      const samples = await engine.generate({ checkpoint: 'other/engine.lm', prompts: prompts.map((p) => p.prompt), chat: true, n: 5, temperature: 1, topP: 1, maxTokens: 8, seed: 1 + 7919 });
      expect(samples).toHaveLength(10);
      const conversations = samples.map((g) => [
        { role: 'user' as const, content: prompts[g.prompt].prompt },
        { role: 'assistant' as const, content: g.text },
      ]);
      const lp = await policy.scorer.conversationLogLikelihood(conversations);
      const lr = await reference.scorer.conversationLogLikelihood(conversations);
      const perPrompt = [0, 1].map((q) => {
        const own = samples.map((g, j) => ({ g, j })).filter(({ g }) => g.prompt === q);
        return { kl: own.reduce((a, { j }) => a + lp[j].logLikelihood - lr[j].logLikelihood, 0) / own.length, tokens: own.reduce((a, { j }) => a + lp[j].tokens, 0) / own.length };
      });
      out.pairs.forEach((p, i) => {
        expect(p.kl).toBeCloseTo(perPrompt[i].kl, 9);
        expect(p.klTokens).toBeCloseTo(perPrompt[i].tokens, 12);
      });
      expect(Math.abs(perPrompt[0].kl)).toBeGreaterThan(1e-3);
      expect(out.overall.kl).toBeCloseTo((perPrompt[0].kl + perPrompt[1].kl) / 2, 9);
      // Per token: every sample's Σ over every sample's tokens (5 samples per prompt).
      const totalKl = 5 * (perPrompt[0].kl + perPrompt[1].kl);
      const totalTokens = 5 * (perPrompt[0].tokens + perPrompt[1].tokens);
      expect(out.overall.klPerToken).toBeCloseTo(totalKl / totalTokens, 9);
      // Not the log-ratio of the greedy response the judge sees.
      const greedy = out.pairs.map((p) => [
        { role: 'user' as const, content: p.prompt },
        { role: 'assistant' as const, content: p.policyResponse },
      ]);
      const gp = await policy.scorer.conversationLogLikelihood(greedy);
      const gr = await reference.scorer.conversationLogLikelihood(greedy);
      expect(Math.abs(out.pairs[0].kl - (gp[0].logLikelihood - gr[0].logLikelihood))).toBeGreaterThan(1e-3);
    } finally {
      reward.dispose();
      policy.dispose();
      reference.dispose();
    }
  });

  it("reads annotators' verdicts and refuses a bad one by line", () => {
    expect([...parseHumanVerdicts('{"id":"p1","verdict":"A"}\n{"id":"p2","verdict":null}\n{"id":"p3","verdict":"tie"}').entries()]).toEqual([
      ['p1', 'win'],
      ['p3', 'tie'],
    ]);
    expect(() => parseHumanVerdicts('{"id":"p1","verdict":"better"}', 'verdicts.jsonl')).toThrow('verdicts.jsonl:1: verdict: must be win, loss or tie (or a, b, c), got "better"');
  });
});
