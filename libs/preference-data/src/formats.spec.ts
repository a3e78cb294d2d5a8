import { describe, expect, it } from 'vitest';
import type { PreferenceRecord } from '@xyp/contracts';
import { type PreferenceDefaults, parseHhDialogue, parsePreferenceLine } from './formats';
import type { PreferenceReject } from './rejects';

const at = { source: 'pairs.jsonl', line: 3 };

function accept(line: unknown, defaults?: PreferenceDefaults): PreferenceRecord {
  const parsed = parsePreferenceLine(typeof line === 'string' ? line : JSON.stringify(line), at, defaults);
  if (!parsed.ok) throw new Error(`expected a record, got reject ${parsed.reject.reason}: ${parsed.reject.message}`);
  return parsed.record;
}

function reject(line: unknown): PreferenceReject {
  const parsed = parsePreferenceLine(typeof line === 'string' ? line : JSON.stringify(line), at);
  if (parsed.ok) throw new Error(`expected a reject, got record ${JSON.stringify(parsed.record)}`);
  return parsed.reject;
}

const assistant = (content: string) => [{ role: 'assistant', content }];

describe('parsePreferenceLine: layouts', () => {
  it('reads {prompt, chosen, rejected} strings (OpenRLHF) into the conversational form with defaults', () => {
    const record = accept({ prompt: 'What is a bond?', chosen: 'A loan to an issuer.', rejected: 'A kind of stock.' });
    expect(record).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      prompt: [{ role: 'user', content: 'What is a bond?' }],
      chosen: assistant('A loan to an issuer.'),
      rejected: assistant('A kind of stock.'),
      set: 'general',
      category: 'uncategorized',
      phase: 'pretrain',
      provenance: { source: { file: 'pairs.jsonl', line: 3 } },
    });
  });

  it('reads a chat-list prompt with TRL conversational responses', () => {
    const prompt = [
      { role: 'system', content: 'You are a careful analyst.' },
      { role: 'user', content: 'Summarise the 10-K.' },
      { role: 'assistant', content: 'Which company?' },
      { role: 'user', content: 'ACME.' },
    ];
    const record = accept({ prompt, chosen: assistant('ACME grew 5%.'), rejected: assistant('No idea.') });
    expect(record.prompt).toEqual(prompt);
    expect(record.chosen).toEqual(assistant('ACME grew 5%.'));
    expect(record.rejected).toEqual(assistant('No idea.'));
  });

  it('reads responses that repeat the prompt before the assistant turn (UltraFeedback) and takes the score gap as margin', () => {
    const record = accept({
      prompt: 'Explain duration.',
      chosen: [{ role: 'user', content: 'Explain duration.' }, { role: 'assistant', content: 'Price sensitivity to rates.' }],
      rejected: [{ role: 'user', content: 'Explain duration.' }, { role: 'assistant', content: 'How long a bond lasts.' }],
      score_chosen: 8.5,
      score_rejected: 6,
    });
    expect(record.prompt).toEqual([{ role: 'user', content: 'Explain duration.' }]);
    expect(record.chosen[0].content).toBe('Price sensitivity to rates.');
    expect(record.margin).toBe(2.5);
  });

  it('splits an HH-style prompt string into turns and drops its trailing empty Assistant turn', () => {
    const record = accept({ prompt: '\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Is gold a hedge?\n\nAssistant:', chosen: ' Partly.', rejected: ' Yes always.' });
    expect(record.prompt).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Is gold a hedge?' },
    ]);
  });

  it('reads HH-RLHF multi-turn dialogues: the shared turns are the prompt, the final assistant turns the responses', () => {
    const shared = '\n\nHuman: How do I open an account?\n\nAssistant: Which bank?\n\nHuman: Any bank.';
    const record = accept({ chosen: `${shared}\n\nAssistant: Bring an ID to a branch.`, rejected: `${shared}\n\nAssistant: Just steal one.` });
    expect(record.prompt).toEqual([
      { role: 'user', content: 'How do I open an account?' },
      { role: 'assistant', content: 'Which bank?' },
      { role: 'user', content: 'Any bank.' },
    ]);
    expect(record.chosen).toEqual(assistant('Bring an ID to a branch.'));
    expect(record.rejected).toEqual(assistant('Just steal one.'));
  });

  it('reads TRL implicit-prompt message lists: the common prefix is the prompt', () => {
    const prefix = [
      { role: 'user', content: 'Convert 100 USD to EUR at 0.9.' },
      { role: 'assistant', content: 'Sure.' },
      { role: 'user', content: 'Go on.' },
    ];
    const record = accept({ chosen: [...prefix, { role: 'assistant', content: '90 EUR.' }], rejected: [...prefix, { role: 'assistant', content: '111 EUR.' }] });
    expect(record.prompt).toEqual(prefix);
    expect(record.chosen).toEqual(assistant('90 EUR.'));
    expect(record.rejected).toEqual(assistant('111 EUR.'));
  });
});

describe('parsePreferenceLine: optional fields', () => {
  const pair = { prompt: 'q', chosen: 'good', rejected: 'bad' };

  it('resolves a category name to its subcategory id and takes the set and phase from it', () => {
    const record = accept({ ...pair, category: '金融领域计算' });
    expect(record).toMatchObject({ category: 'finance.calculation', set: 'finance', phase: 'finetune' });
    expect(accept({ ...pair, category: 'Code' })).toMatchObject({ category: 'general.code', set: 'general', phase: 'pretrain' });
  });

  it('keeps an unknown category as given and uses the default set for it', () => {
    expect(accept({ ...pair, category: ' my-own ' }, { set: 'finance' })).toMatchObject({ category: 'my-own', set: 'finance', phase: 'finetune' });
  });

  it('prefers the line over the defaults, and the defaults over the built-in ones', () => {
    expect(accept({ ...pair, set: 'General', phase: 'finetune' }, { set: 'finance', phase: 'pretrain', category: 'x' })).toMatchObject({
      set: 'general',
      phase: 'finetune',
      category: 'x',
    });
    expect(accept(pair, { category: 'compliance & risk' })).toMatchObject({ category: 'finance.compliance-risk', set: 'finance', phase: 'finetune' });
    expect(accept(pair, { phase: 'finetune' })).toMatchObject({ set: 'general', phase: 'finetune', category: 'uncategorized' });
  });

  it('keeps a given id and margin, and merges the line provenance with the source file and line', () => {
    const record = accept({ ...pair, id: 'pair-7', margin: 0.4, provenance: { judge: 'gpt-4o', source: 'ultrafeedback' } });
    expect(record.id).toBe('pair-7');
    expect(record.margin).toBe(0.4);
    expect(record.provenance).toEqual({ judge: 'gpt-4o', source: { file: 'pairs.jsonl', line: 3, original: 'ultrafeedback' } });
  });

  it('derives the same id for lines that differ only in spacing and case, and a different one otherwise', () => {
    const a = accept(pair).id;
    expect(accept({ prompt: ' Q ', chosen: 'GOOD', rejected: 'bad  ' }).id).toBe(a);
    expect(accept({ ...pair, rejected: 'worse' }).id).not.toBe(a);
  });
});

describe('parsePreferenceLine: rejects', () => {
  const hh = (...turns: [string, string][]) => turns.map(([who, text]) => `\n\n${who}: ${text}`).join('');

  it.each<[string, unknown, PreferenceReject['reason'], string, RegExp]>([
    ['broken JSON', '{"prompt": "q", "chosen": ', 'invalid-json', '(line)', /not valid JSON/],
    ['a JSON array', [1, 2], 'invalid-type', '(line)', /expected a JSON object, got an array/],
    ['chosen absent', { prompt: 'q', rejected: 'b' }, 'missing-field', 'chosen', /chosen: is absent/],
    ['rejected absent', { prompt: 'q', chosen: 'a' }, 'missing-field', 'rejected', /rejected: is absent/],
    ['plain strings without a prompt', { chosen: 'a', rejected: 'b' }, 'missing-field', 'prompt', /prompt: is absent, and chosen is not an HH dialogue/],
    ['chosen a number', { prompt: 'q', chosen: 3, rejected: 'b' }, 'invalid-type', 'chosen', /chosen: expected a string or a list of chat messages, got number/],
    ['prompt an object', { prompt: { text: 'q' }, chosen: 'a', rejected: 'b' }, 'invalid-type', 'prompt', /prompt: expected a string or a list/],
    ['a bad role', { prompt: [{ role: 'gpt', content: 'q' }], chosen: 'a', rejected: 'b' }, 'invalid-type', 'prompt[0].role', /prompt\[0\]\.role: expected one of system, user, assistant/],
    ['content not a string', { chosen: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 1 }], rejected: [] }, 'invalid-type', 'chosen[1].content', /chosen\[1\]\.content: expected a string, got number/],
    ['a list beside an HH string', { chosen: hh(['Human', 'q'], ['Assistant', 'a']), rejected: [] }, 'invalid-type', 'rejected', /rejected: expected a string like chosen/],
    ['margin a string', { prompt: 'q', chosen: 'a', rejected: 'b', margin: 'high' }, 'invalid-type', 'margin', /margin: expected a finite number/],
    ['category a number', { prompt: 'q', chosen: 'a', rejected: 'b', category: 4 }, 'invalid-type', 'category', /category: expected a string/],
    ['provenance a string', { prompt: 'q', chosen: 'a', rejected: 'b', provenance: 'judge' }, 'invalid-type', 'provenance', /provenance: expected an object/],
    ['an empty chosen', { prompt: 'q', chosen: '   ', rejected: 'b' }, 'empty-response', 'chosen', /chosen: the response is empty/],
    ['an empty final HH turn', { chosen: hh(['Human', 'q'], ['Assistant', '']), rejected: hh(['Human', 'q'], ['Assistant', 'b']) }, 'empty-response', 'chosen', /chosen:/],
    ['an empty response list', { prompt: 'q', chosen: 'a', rejected: [] }, 'empty-response', 'rejected', /rejected: is an empty message list/],
    ['identical responses', { prompt: 'q', chosen: 'Yes.', rejected: ' yes. ' }, 'identical-responses', 'rejected', /rejected: is the same text as chosen/],
    ['an empty prompt', { prompt: ' ', chosen: 'a', rejected: 'b' }, 'no-shared-prompt', 'prompt', /prompt: is empty/],
    ['an empty prompt list', { prompt: [], chosen: 'a', rejected: 'b' }, 'no-shared-prompt', 'prompt', /prompt: is empty/],
    [
      'HH dialogues with different prefixes',
      { chosen: hh(['Human', 'q1'], ['Assistant', 'a']), rejected: hh(['Human', 'q2'], ['Assistant', 'b']) },
      'no-shared-prompt',
      'rejected',
      /rejected: differs from chosen before the final assistant turn \(first at turn 1/,
    ],
    [
      'implicit lists with different prefixes',
      {
        chosen: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'x' }, { role: 'user', content: 'r' }, { role: 'assistant', content: 'a' }],
        rejected: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'b' }],
      },
      'no-shared-prompt',
      'rejected',
      /first at turn 2; chosen has 3 prompt turn\(s\), rejected 1/,
    ],
    ['HH with no turn before the answer', { chosen: hh(['Assistant', 'a']), rejected: hh(['Assistant', 'b']) }, 'no-shared-prompt', 'chosen', /chosen: has no turns before/],
    ['a plain rejected beside an HH chosen', { chosen: hh(['Human', 'q'], ['Assistant', 'a']), rejected: 'b' }, 'no-shared-prompt', 'rejected', /rejected: is not an HH dialogue/],
    [
      'a response list that does not repeat the prompt',
      { prompt: 'q', chosen: [{ role: 'user', content: 'other' }, { role: 'assistant', content: 'a' }], rejected: 'b' },
      'no-shared-prompt',
      'chosen',
      /chosen: its 1 turn\(s\) before the final assistant turn are not the prompt/,
    ],
    ['HH ending on a Human turn', { chosen: hh(['Human', 'q'], ['Assistant', 'a'], ['Human', 'more?']), rejected: hh(['Human', 'q'], ['Assistant', 'b']) }, 'final-turn-not-assistant', 'chosen', /chosen: the final turn must be the assistant's, got user/],
    ['an implicit list ending on a user turn', { chosen: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], rejected: [{ role: 'user', content: 'q' }] }, 'final-turn-not-assistant', 'rejected', /rejected: the final turn/],
    ['a response list ending on a user turn', { prompt: 'q', chosen: [{ role: 'user', content: 'a' }], rejected: 'b' }, 'final-turn-not-assistant', 'chosen[0].role', /chosen\[0\]\.role: the final turn must be the assistant's/],
    ['an unknown set', { prompt: 'q', chosen: 'a', rejected: 'b', set: 'retail' }, 'unknown-set', 'set', /set: expected finance or general, got the string "retail"/],
    ['a set that is not a string', { prompt: 'q', chosen: 'a', rejected: 'b', set: 1 }, 'unknown-set', 'set', /set: expected finance or general, got number/],
    ['an unknown phase', { prompt: 'q', chosen: 'a', rejected: 'b', phase: 'warmup' }, 'unknown-phase', 'phase', /phase: expected pretrain or finetune/],
    ['an empty id', { prompt: 'q', chosen: 'a', rejected: 'b', id: '' }, 'invalid-type', 'id', /id: expected a non-empty string/],
  ])('rejects %s', (_name, line, reason, field, message) => {
    const rejected = reject(line);
    expect(rejected).toMatchObject({ source: 'pairs.jsonl', line: 3, reason, field });
    expect(rejected.message).toMatch(message);
    expect(rejected.message.startsWith(`${field}: `)).toBe(true);
  });
});

describe('parseHhDialogue', () => {
  it('maps Human and Assistant turns to user and assistant and trims each turn', () => {
    expect(parseHhDialogue('\n\nHuman: a  b \n\nAssistant:  c\nd\n\nHuman: e')).toEqual([
      { role: 'user', content: 'a  b' },
      { role: 'assistant', content: 'c\nd' },
      { role: 'user', content: 'e' },
    ]);
    expect(parseHhDialogue('Human: x\n\nAssistant: y')).toHaveLength(2);
  });

  it('does not read text that does not start with a turn', () => {
    expect(parseHhDialogue('Just an answer.\n\nHuman: hi')).toBeUndefined();
  });
});
