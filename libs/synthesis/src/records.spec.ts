import { describe, expect, it } from 'vitest';
import { selectSurvivors } from './ensemble';
import { SynthesisInputError } from './errors';
import { FUSION_PROMPT_VERSION } from './prompts';
import { AccountingError, chatMessages, parseSftItem, provenanceCandidates, summarizeAccounting, type InputOutcome } from './records';

const selfQaItem = {
  id: 'doc-1#q3',
  messages: chatMessages('货币基金主要投资于哪些工具？', '主要投资于国债、央行票据和银行存款等短期货币工具。'),
  category: 'funds.knowledge',
  provenance: { generator: 'selfqa', models: ['xuanyuan-70b'], promptVersion: 'selfqa-instructions@1', promptVersions: ['selfqa-answer@1'], sourceId: 'doc-1', supportScore: 0.92, run: 'extra fields are kept' },
};

describe('SftItem', () => {
  it('accepts a chat item with provenance and keeps extra provenance fields', () => {
    const item = parseSftItem(selfQaItem);
    expect(item.provenance).toMatchObject({ generator: 'selfqa', run: 'extra fields are kept' });
    expect(chatMessages('u', 'a', 's').map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
  });

  it('requires an ensemble item to record its candidates, one kept, and the fusion prompt version', () => {
    const selection = selectSurvivors([{ id: 'q', category: 'general.chitchat', query: '你好', candidates: [{ model: 'm1', answer: '你好！', score: 0.8 }, { model: 'm2', answer: '嗨', score: NaN }] }], { threshold: { absolute: 0.5 } }).selections[0];
    const candidates = provenanceCandidates(selection.decisions);
    expect(candidates).toEqual([{ model: 'm1', score: 0.8, kept: true }, { model: 'm2', score: null, kept: false, reason: 'invalid-score' }]);
    const ensemble = { ...selfQaItem, category: 'general.chitchat', provenance: { generator: 'ensemble', models: ['m1', 'fuser'], promptVersion: FUSION_PROMPT_VERSION, fusionPromptVersion: FUSION_PROMPT_VERSION, sourceId: 'q', candidates } };
    expect(parseSftItem(ensemble).provenance.candidates).toHaveLength(2);
    expect(() => parseSftItem({ ...ensemble, provenance: { ...ensemble.provenance, candidates: undefined } })).toThrow(/^item\.provenance\.candidates: an ensemble item records its candidates/);
    expect(() => parseSftItem({ ...ensemble, provenance: { ...ensemble.provenance, fusionPromptVersion: undefined } })).toThrow(/^item\.provenance\.fusionPromptVersion/);
    expect(() => parseSftItem({ ...ensemble, provenance: { ...ensemble.provenance, candidates: [{ ...candidates[0], kept: false }] } })).toThrow(/at least one kept candidate/);
  });

  it('rejects an unknown category, a last turn that is not the assistant, a blank turn and a bad prompt version, naming the field', () => {
    const fail = (patch: object) => () => parseSftItem({ ...selfQaItem, ...patch });
    expect(fail({ category: '基金知识' })).toThrow(/^item\.category: a taxonomy category id/);
    expect(fail({ messages: [{ role: 'assistant', content: 'a' }, { role: 'user', content: 'u' }] })).toThrow(/^item\.messages: the last message is the assistant turn/);
    expect(fail({ messages: chatMessages('  ', 'a') })).toThrow(/^item\.messages\.0\.content: a turn is not blank/);
    expect(fail({ provenance: { ...selfQaItem.provenance, promptVersion: 'selfqa' } })).toThrow(/^item\.provenance\.promptVersion: a prompt version is <id>@<n>/);
    expect(fail({ provenance: { ...selfQaItem.provenance, generator: 'magic' } })).toThrow(SynthesisInputError);
    expect(fail({ extra: 1 })).toThrow(/^item: /);
  });
});

describe('summarizeAccounting', () => {
  const outcomes: InputOutcome[] = [
    { id: 'a', category: 'funds.knowledge', status: 'kept' },
    { id: 'b', category: 'funds.knowledge', status: 'dropped', reason: 'refers-to-document' },
    { id: 'c', category: 'tax.policy', status: 'dropped', reason: 'refers-to-document' },
    { id: 'd', category: 'tax.policy', status: 'failed', reason: 'call-failed' },
    { id: 'e', category: 'tax.policy', status: 'kept' },
  ];

  it('counts per category and per reason', () => {
    expect(summarizeAccounting(['a', 'b', 'c', 'd', 'e'], outcomes)).toEqual({
      inputs: 5,
      kept: 2,
      dropped: 2,
      failed: 1,
      byCategory: { 'funds.knowledge': { inputs: 2, kept: 1, dropped: 1, failed: 0 }, 'tax.policy': { inputs: 3, kept: 1, dropped: 1, failed: 1 } },
      droppedByReason: { 'refers-to-document': 2 },
      failedByReason: { 'call-failed': 1 },
    });
  });

  it('throws naming an input that was lost', () => {
    let error: unknown;
    try {
      summarizeAccounting(['a', 'b', 'c', 'd', 'e', 'lost-1'], outcomes);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AccountingError);
    expect((error as AccountingError).missing).toEqual(['lost-1']);
    expect((error as AccountingError).message).toBe('accounting: no outcome for lost-1');
  });

  it('throws naming an id with two outcomes, a repeated input and an outcome never input', () => {
    expect(() => summarizeAccounting(['a', 'b', 'c', 'd', 'e'], [...outcomes, { id: 'a', category: 'funds.knowledge', status: 'dropped', reason: 'x' }])).toThrow(/more than one outcome \(or input\) for a$/);
    expect(() => summarizeAccounting(['a', 'a', 'b', 'c', 'd', 'e'], outcomes)).toThrow(/more than one outcome \(or input\) for a$/);
    expect(() => summarizeAccounting(['a', 'b', 'c', 'd'], outcomes)).toThrow(/outcomes for ids never input: e$/);
  });
});
