import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PolicyScorer } from '@xyp/policy-eval';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultOutDir, runMcqEval, runPplEval } from './eval';

/** Answers "C" to every prompt; every continuation token has log p = −1 per character. */
const fake: PolicyScorer = {
  name: 'fake-model',
  async logLikelihood(rs) {
    return rs.map((r) => ({ logLikelihood: -[...r.continuation].length, tokens: r.continuation.length, chars: [...r.continuation].length }));
  },
  async conversationLogLikelihood(cs) {
    return cs.map(() => ({ logLikelihood: -2, tokens: 1 }));
  },
  async generate(ps) {
    return ps.map(() => 'C');
  },
};
let disposed = 0;
const open = async () => ({ scorer: fake, dispose: () => void (disposed += 1) });

describe('xyp eval', () => {
  const root = mkdtempSync(join(tmpdir(), 'xyp-eval-cli-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('mcq: counts per subject, rejects with file and line, reports written, model disposed', async () => {
    const data = join(root, 'bench');
    mkdirSync(join(data, 'test'), { recursive: true });
    writeFileSync(join(data, 'test', 'bank.csv'), [',Question,A,B,C,D,Answer', '0,q0,a,b,c,d,C', '1,q1,a,b,c,d,A', '2,q2,a,b,c,B', '3,q3,a,b,c,d,C'].join('\n'));
    const lines: string[] = [];
    const out = join(root, 'out-mcq');
    const r = await runMcqEval({ model: 'm', data, mode: 'generate', shots: '0', maxTokens: '4', batch: '2', out }, { open, log: (l) => lines.push(l) });
    expect(r.subjects).toEqual([{ subject: 'bank', questions: 3, correct: 2, acc: 2 / 3, chance: 0.25, shots: 0, unparsed: 0 }]);
    expect(r.rejects).toEqual({ count: 1, first: [{ file: join('test', 'bank.csv'), line: 4, reason: '6 fields, the header has 7' }] });
    expect(r.model).toBe('fake-model');
    expect(lines[0]).toBe('mcq: 3 questions (test) in 1 subjects, 0 dev exemplars, 1 rejected rows');
    expect(lines.at(-1)).toMatch(/^mcq generate: 3\/3 questions/);
    for (const f of Object.values(r.files)) expect(existsSync(f)).toBe(true);
    expect(JSON.parse(readFileSync(r.files.json, 'utf8')).items).toHaveLength(3);
    expect(disposed).toBe(1);
    await expect(runMcqEval({ model: 'm', data, mode: 'guess', shots: '0', maxTokens: '4', batch: '2' }, { open })).rejects.toThrow('--mode must be loglik or generate');
  });

  it('ppl: per category and overall, rejects counted', async () => {
    const file = join(root, 'c.jsonl');
    writeFileSync(file, ['{"messages":[{"role":"assistant","content":"x"}],"category":"a"}', '{"text":""}', '{"messages":[{"role":"assistant","content":"y"}],"category":"b"}'].join('\n'));
    const r = await runPplEval({ model: 'm', data: file, batch: '4', out: join(root, 'out-ppl') }, { open, log: () => undefined });
    expect(r.overall).toMatchObject({ documents: 2, tokens: 2, nll: 2 });
    expect(r.overall.ppl).toBeCloseTo(Math.exp(2), 12);
    expect(r.rejects.count).toBe(1);
  });

  it('default out dir is .xyp/eval/<timestamp>', () => {
    expect(defaultOutDir(new Date('2024-07-10T12:34:56.789Z'))).toBe(join('.xyp', 'eval', '2024-07-10T12-34-56-789Z'));
  });
});
