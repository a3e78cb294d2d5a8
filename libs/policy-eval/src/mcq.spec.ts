import { describe, expect, it } from 'vitest';
import { evaluateMcq, extractAnswer, mcqPrompt, pickOption } from './mcq';
import type { McqQuestion } from './mcq-data';
import { mcqReport } from './reports';
import type { LogLikelihoodRequest, PolicyScorer } from './scorer';

const q = (id: string, subject: string, options: string[], answer: McqQuestion['answer'], question = `问题${id}`): McqQuestion => ({ id, subject, question, options, answer, file: `${subject}.csv`, line: 2 });

/** A scorer whose log-likelihoods come from a table keyed by continuation, and whose answers from a table keyed by question text. */
function fakeScorer(loglik: Record<string, number>, answers: Record<string, string> = {}): PolicyScorer & { requests: LogLikelihoodRequest[]; prompts: string[] } {
  const requests: LogLikelihoodRequest[] = [];
  const prompts: string[] = [];
  return {
    name: 'fake',
    requests,
    prompts,
    async logLikelihood(rs) {
      requests.push(...rs);
      return rs.map((r) => ({ logLikelihood: loglik[r.continuation], tokens: 1, chars: [...r.continuation].length }));
    },
    async conversationLogLikelihood() {
      throw new Error('unused');
    },
    async generate(ps) {
      prompts.push(...ps);
      return ps.map((p) => {
        const key = Object.keys(answers).find((k) => p.includes(`题目：${k}\n`));
        return key === undefined ? '' : answers[key];
      });
    },
  };
}

describe('prompt', () => {
  it('is the FinanceIQ prompt, with exemplars answered before the question', () => {
    const target = q('1', '银行', ['甲', '乙', '丙', '丁'], 'B', '什么？');
    const shot = q('9', '银行', ['w', 'x', 'y', 'z'], 'C', '例题');
    expect(mcqPrompt(target)).toBe('以下是关于银行的单项选择题，请直接给出正确答案的选项。\n\n题目：什么？\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案是：');
    expect(mcqPrompt(target, [shot], 'generate')).toBe(
      '以下是关于银行的单项选择题，请直接给出正确答案的选项。\n\n题目：例题\nA. w\nB. x\nC. y\nD. z\n答案是：C\n\n题目：什么？\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案是：',
    );
    expect(mcqPrompt(target, [shot], 'loglik')).toContain('答案是：y\n\n题目：什么？');
  });
});

describe('acc vs acc_norm', () => {
  it('pickOption: acc takes the largest sum, acc_norm the largest per character; ties go to the first', () => {
    // sums -4, -6, -9, -5; chars 1, 3, 9, 1 → per char -4, -2, -1, -5
    expect(pickOption([
      { logLikelihood: -4, chars: 1 },
      { logLikelihood: -6, chars: 3 },
      { logLikelihood: -9, chars: 9 },
      { logLikelihood: -5, chars: 1 },
    ])).toEqual({ acc: 0, accNorm: 2 });
    expect(pickOption([
      { logLikelihood: -2, chars: 2 },
      { logLikelihood: -2, chars: 2 },
    ])).toEqual({ acc: 0, accNorm: 0 });
  });

  it('evaluateMcq (loglik): per-subject counts, macro and micro, options scored as continuations after the prompt', async () => {
    // Short option 'x' has the best sum, long option 'long-one' (8 chars) the best per character.
    const ll = { x: -3, yy: -5, 'long-one': -8, z: -4, p: -1, q: -2, r: -3, s: -4 };
    const questions = [
      q('1', 'bank', ['x', 'yy', 'long-one', 'z'], 'A'), // acc right (x), norm wrong (long-one)
      q('2', 'bank', ['x', 'yy', 'long-one', 'z'], 'C'), // acc wrong, norm right
      q('3', 'bank', ['yy', 'long-one', 'z', 'x'], 'D'), // acc right (x at D), norm wrong
      q('4', 'tax', ['p', 'q', 'r', 's'], 'A'), // both right
    ];
    const scorer = fakeScorer(ll);
    const progress: [number, number][] = [];
    const result = await evaluateMcq(questions, scorer, { mode: 'loglik', chunk: 3, onProgress: (d, t) => void progress.push([d, t]) });
    expect(scorer.requests).toHaveLength(16);
    expect(scorer.requests[0]).toEqual({ context: mcqPrompt(questions[0], [], 'loglik'), continuation: 'x' });
    expect(progress).toEqual([
      [3, 4],
      [4, 4],
    ]);
    expect(result.subjects).toEqual([
      { subject: 'bank', questions: 3, correct: 2, acc: 2 / 3, correctNorm: 1, accNorm: 1 / 3, chance: 0.25, shots: 0 },
      { subject: 'tax', questions: 1, correct: 1, acc: 1, correctNorm: 1, accNorm: 1, chance: 0.25, shots: 0 },
    ]);
    expect(result.macro.acc).toBeCloseTo((2 / 3 + 1) / 2, 12);
    expect(result.macro.accNorm).toBeCloseTo((1 / 3 + 1) / 2, 12);
    expect(result.micro).toEqual({ acc: 3 / 4, accNorm: 2 / 4 });
    expect(result.items[1]).toMatchObject({ predicted: 'A', predictedNorm: 'C', correct: false, correctNorm: true, logLikelihoods: [-3, -5, -8, -4], chars: [1, 2, 8, 1] });
  });

  it('few-shot exemplars come from dev of the same subject, never the question itself', async () => {
    const questions = [q('1', 'bank', ['p', 'q', 'r', 's'], 'A')];
    const dev = [q('d1', 'bank', ['p', 'q', 'r', 's'], 'B', '例一'), q('d2', 'tax', ['p', 'q', 'r', 's'], 'C', '别科'), q('d3', 'bank', ['p', 'q', 'r', 's'], 'D', '例三'), q('d4', 'bank', ['p', 'q', 'r', 's'], 'A', '例四')];
    const scorer = fakeScorer({}, { 问题1: 'A' });
    const result = await evaluateMcq(questions, scorer, { mode: 'generate', shots: 2, dev });
    expect(scorer.prompts[0]).toBe(mcqPrompt(questions[0], [dev[0], dev[2]], 'generate'));
    expect(result.subjects[0]).toMatchObject({ shots: 2, correct: 1, unparsed: 0 });
  });
});

describe('answer extraction (generate)', () => {
  const options = ['再贴现', '税收减免', '国债发行', '财政补贴'];
  it.each([
    ['C', 'C', 'leading-letter'],
    [' (B) 税收减免', 'B', 'leading-letter'],
    ['D. 财政补贴', 'D', 'leading-letter'],
    ['答案是：C', 'C', 'pattern'],
    ['我认为答案为 B。', 'B', 'pattern'],
    ['先排除A和D，所以选C', 'C', 'pattern'],
    ['The answer is D', 'D', 'pattern'],
    ['首先A不对', 'A', 'letter'],
    ['应该是国债发行吧', 'C', 'option-text'],
  ])('%j → %s (%s)', (response, letter, rule) => {
    expect(extractAnswer(response, options)).toEqual({ letter, rule });
  });

  it.each([[''], ['我不知道'], ['Based on economics'], ['再贴现和国债发行都对']])('%j is unparsed', (response) => {
    expect(extractAnswer(response, options)).toBeUndefined();
  });

  it('evaluateMcq (generate): unparsed answers count as wrong and are reported', async () => {
    const questions = [q('1', 's', ['a', 'b', 'c', 'd'], 'C'), q('2', 's', ['a', 'b', 'c', 'd'], 'A'), q('3', 's', ['a', 'b', 'c', 'd'], 'B')];
    const scorer = fakeScorer({}, { 问题1: 'C', 问题2: '不确定', 问题3: '答案是：D' });
    const result = await evaluateMcq(questions, scorer, { mode: 'generate' });
    expect(result.subjects).toEqual([{ subject: 's', questions: 3, correct: 1, acc: 1 / 3, chance: 0.25, shots: 0, unparsed: 1 }]);
    expect(result.unparsed).toBe(1);
    expect(result.items.map((i) => [i.predicted, i.rule])).toEqual([
      ['C', 'leading-letter'],
      [null, null],
      ['D', 'pattern'],
    ]);
    const report = mcqReport(result);
    expect(report.markdown).toContain('| s | s | 3 | 1 | 33.3% | 1 | 25.0% |');
    expect(Buffer.from(report.png.subarray(1, 4)).toString('ascii')).toBe('PNG');
    expect(JSON.parse(report.json).micro.acc).toBeCloseTo(1 / 3, 12);
  });
});
