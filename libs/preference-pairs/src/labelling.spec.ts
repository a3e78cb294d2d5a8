import { afterEach, describe, expect, it } from 'vitest';
import { PreferenceRecord } from '@xyp/contracts';
import { LlmGatewayError } from '@xyp/llm';
import { runRewardPairs, type RunRewardPairsInput } from './run';
import { chatServer, fixedSource, judgeRequestParts, judgeServer, type ChatServer } from './testing/fixtures';

const servers: ChatServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const SAVING = 'How should I keep my emergency savings?';
const TOTAL = 'A deposit of 1,000 yuan grows 25.05%. What is the total?';
const prompts = [
  JSON.stringify({ id: 'save', prompt: SAVING, category: 'general.knowledge' }),
  JSON.stringify({ id: 'total', prompt: TOTAL, set: 'finance', category: 'finance.calculation', reference: '1,250.5' }),
].join('\n');

/** Two models, two settings: on the saving prompt one answer of each model says SAFE (what the keyword judge likes). */
const ANSWERS: Record<string, Record<string, Record<string, string>>> = {
  big: {
    [SAVING]: { cool: 'Keep it SAFE in a deposit account.', hot: 'Buy lottery tickets.' },
    [TOTAL]: { cool: 'The total is 1250.5 yuan.', hot: 'The total is 1300.' },
  },
  small: {
    [SAVING]: { cool: 'A SAFE money market fund.', hot: 'Put it all in one stock.' },
    [TOTAL]: { cool: 'About 1250.52 in total.', hot: 'Roughly 1,000 + 25 = 1025.' },
  },
};
const sources = () => ['big', 'small'].map((id) => fixedSource(id, (prompt, setting) => [ANSWERS[id][prompt][setting]]));

async function judge(options: Parameters<typeof judgeServer>[1] = {}): Promise<ChatServer> {
  const s = await judgeServer('SAFE', options);
  servers.push(s);
  return s;
}

function input(judgeUrl: string, extra: Record<string, unknown> = {}, rest: Partial<RunRewardPairsInput> = {}): RunRewardPairsInput {
  const config = {
    sources: [
      { kind: 'openai', id: 'big', baseUrl: 'http://unused', model: 'big' },
      { kind: 'openai', id: 'small', baseUrl: 'http://unused', model: 'small' },
    ],
    settings: [
      { name: 'cool', temperature: 0.7, topP: 0.9, maxTokens: 64 },
      { name: 'hot', temperature: 1.2, topP: 1, maxTokens: 64 },
    ],
    samplesPerSetting: 1,
    seed: 11,
    maxPairsPerPrompt: 10,
    judge: { baseUrl: judgeUrl, model: 'judge-1', backoffMs: 1 },
    ...extra,
  };
  return { config: { text: JSON.stringify(config) }, prompts: { text: prompts }, sources: sources(), ...rest };
}

const texts = (r: PreferenceRecord) => ({ chosen: r.chosen[0].content, rejected: r.rejected[0].content });

describe('judge labels, asked in both orders', () => {
  it('keeps the pairs a consistent judge prefers, with the right side chosen, and asks every pair both ways', async () => {
    const j = await judge();
    const out = await runRewardPairs(input(j.baseUrl));
    const judged = out.records.filter((r) => r.provenance?.labeller === 'judge');
    // Saving prompt: 4 answers, 6 pairs; 2 SAFE × 2 other are decided, SAFE/SAFE and other/other are ties.
    expect(judged).toHaveLength(4);
    for (const r of judged) {
      expect(texts(r).chosen).toContain('SAFE');
      expect(texts(r).rejected).not.toContain('SAFE');
      expect(r.margin).toBe(1);
      expect(r.provenance).toMatchObject({ judgePromptVersion: 'pairwise-v1', judgeModel: 'judge-1', seed: 11 });
    }
    expect(out.summary.dropped['judge-tie']).toBe(2);
    // Every judged pair was put to the judge as A/B and as B/A.
    const asked = j.requests.map((body) => judgeRequestParts(body));
    expect(asked).toHaveLength(12);
    for (const { a, b } of asked) expect(asked.some((other) => other.a === b && other.b === a)).toBe(true);
    // The prompt with a reference was labelled by the verifiable check, never by the judge.
    expect(asked.every((p) => p.question === SAVING)).toBe(true);
  });

  it('drops every pair of a position-biased judge as inconsistent', async () => {
    const j = await judge({ alwaysA: true });
    const out = await runRewardPairs(input(j.baseUrl));
    expect(out.records.filter((r) => r.provenance?.labeller === 'judge')).toEqual([]);
    expect(out.summary.dropped['judge-inconsistent']).toBe(6);
    expect(out.summary.perLabeller.judge).toEqual({ labelled: 6, kept: 0, dropped: 6 });
  });

  it('keeps only pairs whose score gap reaches the threshold, and records the margin', async () => {
    // SAFE and "deposit" each add 3 points: "Keep it SAFE in a deposit account." scores 9, the other SAFE answer 6, the rest 3.
    const score = (a: string) => 3 + (a.includes('SAFE') ? 3 : 0) + (a.includes('deposit') ? 3 : 0);
    const j = await judge({ score });
    const config = { judge: { baseUrl: j.baseUrl, model: 'judge-1', margin: 'score-gap', minMargin: 0.5, backoffMs: 1 } };
    const strict = await runRewardPairs(input(j.baseUrl, config));
    const judged = strict.records.filter((r) => r.provenance?.labeller === 'judge');
    expect(judged.map((r) => [texts(r).chosen, r.margin])).toEqual([
      ['Keep it SAFE in a deposit account.', 0.6],
      ['Keep it SAFE in a deposit account.', 0.6],
    ]);
    expect(strict.summary.dropped['judge-below-margin']).toBe(3);
    // The payload's minMargin overrides the config's: at 0.3 the 0.3 gaps are kept too.
    const loose = await runRewardPairs(input(j.baseUrl, config, { overrides: { minMargin: 0.3 } }));
    expect(loose.records.filter((r) => r.provenance?.labeller === 'judge').map((r) => r.margin).sort()).toEqual([0.3, 0.3, 0.3, 0.6, 0.6]);
  });

  it('the gateway retries a transient 500 of the judge; a 400 fails at once, naming the endpoint', async () => {
    // One 500 (the first request), then the keyword judge: the same labels, one request more.
    const verdict = (body: Parameters<typeof judgeRequestParts>[0]) => {
      const { a, b } = judgeRequestParts(body);
      return JSON.stringify({ winner: a.includes('SAFE') === b.includes('SAFE') ? 'tie' : a.includes('SAFE') ? 'A' : 'B' });
    };
    const flaky = await chatServer((body, k) => (k === 0 ? { status: 500, body: { error: { message: 'overloaded' } } } : { contents: [verdict(body)] }));
    servers.push(flaky);
    const out = await runRewardPairs(input(flaky.baseUrl));
    expect(out.records.filter((r) => r.provenance?.labeller === 'judge')).toHaveLength(4);
    expect(flaky.requests).toHaveLength(13);

    const refusing = await chatServer(() => ({ status: 400, body: { error: { message: 'unknown model judge-1' } } }));
    servers.push(refusing);
    const error = await runRewardPairs(input(refusing.baseUrl)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmGatewayError);
    const e = error as LlmGatewayError;
    expect([e.status, e.attempts, e.permanent]).toEqual([400, 1, true]);
    expect(e.message).toContain(`model judge at ${refusing.baseUrl}/v1 (model id judge-1) failed with status 400: unknown model judge-1`);
    // Requests already in flight (both orders, concurrent pairs) land; none is sent twice.
    await new Promise((done) => setTimeout(done, 100));
    expect(refusing.requests.length).toBeGreaterThan(0);
    expect(new Set(refusing.requests.map((r) => JSON.stringify(r))).size).toBe(refusing.requests.length);
  });

  it('drops pairs whose judge reply is not the strict verdict object', async () => {
    const sloppy = await chatServer(() => ({ contents: ['I think A is better. {"winner": "A"}'] }));
    servers.push(sloppy);
    const out = await runRewardPairs(input(sloppy.baseUrl));
    expect(out.summary.dropped['judge-unparseable']).toBe(6);
  });
});

describe('verifiable labels', () => {
  it('chooses the answer within tolerance of the reference over a wrong one, and drops both-correct and both-wrong pairs', async () => {
    const j = await judge();
    const out = await runRewardPairs(input(j.baseUrl));
    const verified = out.records.filter((r) => r.provenance?.labeller === 'verifiable');
    // Correct: "1250.5" and "1250.52" (relative error 1.6e-5); wrong: "1300", "1025".
    expect(verified).toHaveLength(4);
    for (const r of verified) {
      expect(texts(r).chosen).toMatch(/1250\.52?\b/);
      expect(texts(r).rejected).toMatch(/1300|1025/);
      expect(r.margin).toBe(1);
    }
    expect(out.summary.dropped).toMatchObject({ 'verifiable-both-correct': 1, 'verifiable-both-wrong': 1 });
    // A tighter tolerance makes 1250.52 wrong.
    const tight = await runRewardPairs(input(j.baseUrl, { verifiable: { relTol: 1e-6 } }));
    expect(tight.records.filter((r) => r.provenance?.labeller === 'verifiable').map((r) => texts(r).chosen)).toEqual(Array(3).fill('The total is 1250.5 yuan.'));
  });
});

describe('human labels', () => {
  it('override the judge and the verifiable check, by response text or id, and are always kept', async () => {
    const j = await judge();
    const first = await runRewardPairs(input(j.baseUrl));
    const idOf = (text: string) => first.responses.find((r) => r.text === text)?.id as string;
    const labels = [
      // The judge prefers the SAFE answer; the human does not.
      { prompt_id: 'save', chosen: 'Buy lottery tickets.', rejected: 'Keep it SAFE in a deposit account.', margin: 0.8 },
      // Against the reference, by ids.
      { promptId: 'total', chosen: idOf('The total is 1300.'), rejected: idOf('The total is 1250.5 yuan.') },
      // Names no sampled response.
      { prompt_id: 'save', chosen: 'never sampled', rejected: 'Buy lottery tickets.' },
    ];
    const requestsBefore = j.requests.length;
    const out = await runRewardPairs(input(j.baseUrl, {}, { humanLabels: { text: labels.map((l) => JSON.stringify(l)).join('\n') } }));
    const human = out.records.filter((r) => r.provenance?.labeller === 'human');
    expect(human.map((r) => [texts(r).chosen, texts(r).rejected, r.margin])).toEqual([
      ['Buy lottery tickets.', 'Keep it SAFE in a deposit account.', 0.8],
      ['The total is 1300.', 'The total is 1250.5 yuan.', 1],
    ]);
    expect(out.summary.perLabeller.human).toEqual({ labelled: 2, kept: 2, dropped: 0 });
    expect(out.summary.humanLabelsUnmatched).toBe(1);
    // The judge was not asked about the human-labelled pair: one pair fewer, both orders.
    expect(j.requests.length - requestsBefore).toBe(10);
    // No record says the opposite of a human label.
    expect(out.records.some((r) => texts(r).chosen === 'Keep it SAFE in a deposit account.' && texts(r).rejected === 'Buy lottery tickets.')).toBe(false);
  });
});

describe('output', () => {
  it('splits records by set into pretrain (general) and finetune (finance) lines that parse as PreferenceRecord', async () => {
    const j = await judge();
    const out = await runRewardPairs(input(j.baseUrl));
    const read = (text: string) => text.trimEnd().split('\n').map((line) => PreferenceRecord.parse(JSON.parse(line)));
    const pretrain = read(out.files['pretrain.jsonl']);
    const finetune = read(out.files['finetune.jsonl']);
    expect(pretrain.map((r) => [r.set, r.phase, r.category])).toEqual(Array(4).fill(['general', 'pretrain', 'general.knowledge']));
    expect(finetune.map((r) => [r.set, r.phase, r.category])).toEqual(Array(4).fill(['finance', 'finetune', 'finance.calculation']));
    expect(new Set([...pretrain, ...finetune].map((r) => r.id)).size).toBe(8);
    const r = finetune[0];
    expect(r.prompt).toEqual([{ role: 'user', content: TOTAL }]);
    expect(r.provenance).toMatchObject({ promptId: 'total', input: { file: 'prompts.jsonl', line: 2 }, labeller: 'verifiable', seed: 11 });
    const summary = JSON.parse(out.files['summary.json']) as typeof out.summary;
    expect(summary).toMatchObject({ prompts: 2, samples: 8, responses: 8, candidatePairs: 12, kept: 8, collections: { pretrain: 4, finetune: 4 } });
    expect(summary.perModelPair).toEqual({ 'big vs big': { candidates: 2, kept: 2 }, 'big vs small': { candidates: 8, kept: 4 }, 'small vs small': { candidates: 2, kept: 2 } });
    expect(out.files['samples.jsonl'].trimEnd().split('\n')).toHaveLength(8);
    expect(out.files['dropped.jsonl'].trimEnd().split('\n').map((l) => (JSON.parse(l) as { reason: string }).reason).sort()).toEqual([
      'judge-tie',
      'judge-tie',
      'verifiable-both-correct',
      'verifiable-both-wrong',
    ]);
  });
});
