import { describe, expect, it } from 'vitest';
import { PairsInputError } from './errors';
import { HumanLabels } from './human-labels';
import { parsePairsConfig } from './config';
import { parsePrompts, promptIdOf } from './prompts';

function failure(fn: () => unknown): PairsInputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PairsInputError);
    return error as PairsInputError;
  }
  throw new Error('no error');
}

describe('prompt lines', () => {
  it('reads ids, sets, subcategories and references, with defaults', () => {
    const prompts = parsePrompts(
      [
        JSON.stringify({ id: 'q1', prompt: 'How do bonds work?' }),
        '',
        JSON.stringify({ prompt: '年化收益率是多少？', category: '金融领域计算', reference: '5.2%' }),
        JSON.stringify({ id: 7, prompt: 'Say hi', set: 'general', category: 'my own' }),
      ].join('\n'),
      { defaultSet: 'general' },
    );
    expect(prompts.map((p) => [p.id, p.set, p.category, p.reference, p.source.line])).toEqual([
      ['q1', 'general', 'uncategorized', undefined, 1],
      [promptIdOf('年化收益率是多少？'), 'finance', 'finance.calculation', '5.2%', 3],
      ['7', 'general', 'my own', undefined, 4],
    ]);
  });

  it('names the file, line and field of a bad line, counting blank lines', () => {
    const good = JSON.stringify({ prompt: 'ok' });
    expect(failure(() => parsePrompts(`${good}\n\n{"prompt": "x",`, { file: 'in.jsonl' })).message).toMatch(/^in\.jsonl line 3: not JSON/);
    const missing = failure(() => parsePrompts(`${good}\n${JSON.stringify({ id: 'b', text: 'no prompt' })}`));
    expect(missing.message).toMatch(/^prompts\.jsonl line 2: field "prompt": /);
    expect([missing.line, missing.field]).toEqual([2, 'prompt']);
    expect(failure(() => parsePrompts(`${good}\n${JSON.stringify({ prompt: 'x' })}\n${JSON.stringify({ prompt: 'y', set: 'fin' })}`)).message).toMatch(/^prompts\.jsonl line 3: field "set": /);
    expect(failure(() => parsePrompts(JSON.stringify({ prompt: '  ' }))).message).toBe('prompts.jsonl line 1: field "prompt": must not be empty');
    expect(failure(() => parsePrompts('[1, 2]')).message).toBe('prompts.jsonl line 1: not a JSON object');
    expect(failure(() => parsePrompts(`${good}\n${good}`)).message).toMatch(/^prompts\.jsonl line 2: field "id": prompt id p-[0-9a-f]{12} is already used on line 1/);
    expect(failure(() => parsePrompts(JSON.stringify({ prompt: 'x', set: 'general', category: 'finance.calculation' }))).message).toBe(
      'prompts.jsonl line 1: field "category": finance.calculation is a finance subcategory, but set is general',
    );
    expect(failure(() => parsePrompts('\n\n')).message).toBe('prompts.jsonl: no prompts');
  });

  it('names the line and field of a bad human label, and a pair labelled both ways', () => {
    const line = (o: object) => JSON.stringify(o);
    expect(failure(() => HumanLabels.parse(`${line({ prompt_id: 'q', chosen: 'x', rejected: 'y' })}\n${line({ chosen: 'x', rejected: 'y' })}`)).message).toBe(
      'human-labels.jsonl line 2: field "prompt_id": give prompt_id (or promptId)',
    );
    expect(failure(() => HumanLabels.parse(`${line({ promptId: 'q', chosen: 'x', rejected: 'y' })}\n${line({ prompt_id: 'q', chosen: 'y', rejected: 'x' })}`)).message).toBe(
      'human-labels.jsonl line 2: field "chosen": labels the pair of line 1 the other way round',
    );
  });

  it('names the field of a bad config', () => {
    const base = { sources: [{ kind: 'openai', id: 'm', baseUrl: 'http://x', model: 'm' }], settings: [{ temperature: 0.7 }] };
    expect(parsePairsConfig(JSON.stringify(base)).samplesPerSetting).toBe(2);
    expect(failure(() => parsePairsConfig(JSON.stringify({ ...base, settings: [{ temperature: 3 }] }))).message).toMatch(/^reward-pairs\.json: field "settings\.0\.temperature": /);
    expect(failure(() => parsePairsConfig(JSON.stringify({ ...base, labellers: ['judge'] }))).message).toBe(
      'reward-pairs.json: field "judge": labellers include judge, but no judge endpoint is configured',
    );
    expect(failure(() => parsePairsConfig(JSON.stringify({ ...base, sources: [base.sources[0], base.sources[0]] }))).field).toBe('sources.1.id');
  });
});
