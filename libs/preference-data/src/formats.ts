/**
 * One JSONL line in any common public preference layout → one `PreferenceRecord` (the TRL
 * conversational form of `@xyp/contracts`), or a reject naming the field at fault.
 *
 * Layouts read (detected per line, so one file may mix them):
 *
 * - explicit prompt (TRL, OpenRLHF): `{prompt, chosen, rejected}`. `prompt` is a string (a user
 *   turn; an HH-style `"\n\nHuman: …\n\nAssistant:"` string is split into its turns) or a list of
 *   chat messages. `chosen`/`rejected` are strings or message lists ending in one assistant turn;
 *   a list may repeat the prompt's turns before it (UltraFeedback's `chosen: [user, assistant]`).
 * - HH-RLHF dialogues: `{chosen, rejected}` as `"\n\nHuman: …\n\nAssistant: …"` strings. The prompt
 *   is the conversation before the final Assistant turn, which must be the same in both.
 * - implicit prompt (TRL): `{chosen: [messages], rejected: [messages]}` sharing every turn but the
 *   final assistant one; that shared prefix is the prompt.
 *
 * Optional fields on any line: `id`, `set`, `category`, `phase`, `margin` (else the gap
 * `score_chosen − score_rejected` when both are numbers, as in UltraFeedback), `provenance`.
 */
import {
  type ChatTurn,
  ChatRole,
  PreferencePhase,
  PreferenceRecord,
  PreferenceSet,
  defaultPhaseOf,
  resolveSubcategory,
} from '@xyp/contracts';
import { pairDigest, pairText as normalizedPairText, normalizeText, promptKey as normalizedPromptKey } from './normalize';
import type { PreferenceReject, RejectReason } from './rejects';

/** What a line that names no `set`, `category` or `phase` gets. */
export interface PreferenceDefaults {
  set?: PreferenceSet;
  category?: string;
  phase?: PreferencePhase;
}

/** Where a line came from: the input's name and its 1-based line number. */
export interface LineLocation {
  source: string;
  line: number;
}

/**
 * A parsed line: the record with its normalized keys (`promptKey`, the normalized `pairText` and
 * its `digest`, the exact-duplicate key and derived id), or the reject.
 */
export type ParsedPreferenceLine =
  | { ok: true; record: PreferenceRecord; promptKey: string; pairText: string; digest: string }
  | { ok: false; reject: PreferenceReject };

/** The category of a pair that names none and has no default. */
export const UNCATEGORIZED = 'uncategorized';

class LineError extends Error {
  constructor(
    readonly reason: RejectReason,
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

function fail(reason: RejectReason, field: string, detail: string): never {
  throw new LineError(reason, field, detail);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const HH_SPLIT = /\n\n(Human|Assistant):/;
const HH_START = /^\s*(Human|Assistant):/;

/**
 * The turns of an HH-RLHF dialogue (`"\n\nHuman: …\n\nAssistant: …"`, Human → user, Assistant →
 * assistant, each turn's text trimmed), or undefined when the text does not start with a turn.
 */
export function parseHhDialogue(text: string): ChatTurn[] | undefined {
  if (!HH_START.test(text)) return undefined;
  const parts = `\n\n${text.trimStart()}`.split(HH_SPLIT);
  const turns: ChatTurn[] = [];
  for (let i = 1; i + 1 < parts.length; i += 2) {
    turns.push({ role: parts[i] === 'Human' ? 'user' : 'assistant', content: parts[i + 1].trim() });
  }
  return turns;
}

function parseTurns(value: unknown, field: string): ChatTurn[] {
  if (!Array.isArray(value)) fail('invalid-type', field, `expected a list of chat messages, got ${describe(value)}`);
  return value.map((message, i) => {
    if (!isPlainObject(message)) fail('invalid-type', `${field}[${i}]`, `expected a chat message {role, content}, got ${describe(message)}`);
    const role = ChatRole.safeParse(message.role);
    if (!role.success) fail('invalid-type', `${field}[${i}].role`, `expected one of ${ChatRole.options.join(', ')}, got ${describe(message.role)}`);
    if (typeof message.content !== 'string') fail('invalid-type', `${field}[${i}].content`, `expected a string, got ${describe(message.content)}`);
    return { role: role.data, content: message.content };
  });
}

function sameTurns(a: readonly ChatTurn[], b: readonly ChatTurn[]): boolean {
  return a.length === b.length && a.every((turn, i) => turn.role === b[i].role && turn.content === b[i].content);
}

function explicitPrompt(value: unknown): ChatTurn[] {
  let turns: ChatTurn[];
  if (typeof value === 'string') {
    const hh = parseHhDialogue(value);
    turns = hh ?? [{ role: 'user', content: value }];
    // An HH-style prompt ends with the empty "Assistant:" the response follows.
    if (hh && turns.length > 0 && turns[turns.length - 1].role === 'assistant' && turns[turns.length - 1].content === '') turns.pop();
  } else if (Array.isArray(value)) {
    turns = parseTurns(value, 'prompt');
  } else {
    fail('invalid-type', 'prompt', `expected a string or a list of chat messages, got ${describe(value)}`);
  }
  if (turns.every((turn) => turn.content.trim() === '')) fail('no-shared-prompt', 'prompt', 'is empty');
  return turns;
}

function responseAfterPrompt(value: unknown, field: 'chosen' | 'rejected', prompt: readonly ChatTurn[]): string {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) fail('invalid-type', field, `expected a string or a list of chat messages, got ${describe(value)}`);
  const turns = parseTurns(value, field);
  if (turns.length === 0) fail('empty-response', field, 'is an empty message list');
  const last = turns.length - 1;
  if (turns[last].role !== 'assistant') fail('final-turn-not-assistant', `${field}[${last}].role`, `the final turn must be the assistant's, got ${turns[last].role}`);
  const before = turns.slice(0, last);
  if (before.length > 0 && !sameTurns(before, prompt)) {
    fail('no-shared-prompt', field, `its ${before.length} turn(s) before the final assistant turn are not the prompt`);
  }
  return turns[last].content;
}

/** Splits two full dialogues into the shared prompt and the two final assistant turns. */
function splitDialogues(chosen: ChatTurn[], rejected: ChatTurn[]): { prompt: ChatTurn[]; chosen: string; rejected: string } {
  for (const [field, turns] of [['chosen', chosen], ['rejected', rejected]] as const) {
    if (turns.length === 0) fail('empty-response', field, 'has no turns');
    const last = turns[turns.length - 1];
    if (last.role !== 'assistant') fail('final-turn-not-assistant', field, `the final turn must be the assistant's, got ${last.role}`);
  }
  const prompt = chosen.slice(0, -1);
  const rejectedPrompt = rejected.slice(0, -1);
  if (prompt.length === 0 && rejectedPrompt.length === 0) fail('no-shared-prompt', 'chosen', 'has no turns before its final assistant turn');
  if (!sameTurns(prompt, rejectedPrompt)) {
    let i = 0;
    while (i < prompt.length && i < rejectedPrompt.length && prompt[i].role === rejectedPrompt[i].role && prompt[i].content === rejectedPrompt[i].content) i++;
    fail(
      'no-shared-prompt',
      'rejected',
      `differs from chosen before the final assistant turn (first at turn ${i + 1}; chosen has ${prompt.length} prompt turn(s), rejected ${rejectedPrompt.length})`,
    );
  }
  if (prompt.every((turn) => turn.content.trim() === '')) fail('no-shared-prompt', 'chosen', 'the turns before the final assistant turn are empty');
  return { prompt, chosen: chosen[chosen.length - 1].content, rejected: rejected[rejected.length - 1].content };
}

function implicitPrompt(chosen: unknown, rejected: unknown): { prompt: ChatTurn[]; chosen: string; rejected: string } {
  if (typeof chosen === 'string') {
    if (typeof rejected !== 'string') fail('invalid-type', 'rejected', `expected a string like chosen, got ${describe(rejected)}`);
    const chosenTurns = parseHhDialogue(chosen);
    if (!chosenTurns) fail('missing-field', 'prompt', 'is absent, and chosen is not an HH dialogue ("\\n\\nHuman: …\\n\\nAssistant: …")');
    const rejectedTurns = parseHhDialogue(rejected);
    if (!rejectedTurns) fail('no-shared-prompt', 'rejected', 'is not an HH dialogue ("\\n\\nHuman: …\\n\\nAssistant: …") while chosen is');
    return splitDialogues(chosenTurns, rejectedTurns);
  }
  if (Array.isArray(chosen)) {
    if (!Array.isArray(rejected)) fail('invalid-type', 'rejected', `expected a list of chat messages like chosen, got ${describe(rejected)}`);
    return splitDialogues(parseTurns(chosen, 'chosen'), parseTurns(rejected, 'rejected'));
  }
  fail('invalid-type', 'chosen', `expected a string or a list of chat messages, got ${describe(chosen)}`);
}

function optionalString(line: Record<string, unknown>, field: string): string | undefined {
  const value = line[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') fail('invalid-type', field, `expected a string, got ${describe(value)}`);
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function optionalEnum<T extends string>(line: Record<string, unknown>, field: string, options: readonly T[], reason: RejectReason): T | undefined {
  const value = line[field];
  if (value === undefined || value === null) return undefined;
  const normalized = typeof value === 'string' ? value.trim().toLowerCase() : value;
  if (typeof normalized !== 'string' || !(options as readonly string[]).includes(normalized)) {
    fail(reason, field, `expected ${options.join(' or ')}, got ${describe(value)}`);
  }
  return normalized as T;
}

function lineMargin(line: Record<string, unknown>): number | undefined {
  const margin = line.margin;
  if (margin !== undefined && margin !== null) {
    if (typeof margin !== 'number' || !Number.isFinite(margin)) fail('invalid-type', 'margin', `expected a finite number, got ${describe(margin)}`);
    return margin;
  }
  const { score_chosen: chosen, score_rejected: rejected } = line;
  if (typeof chosen === 'number' && typeof rejected === 'number' && Number.isFinite(chosen - rejected)) return chosen - rejected;
  return undefined;
}

function lineId(line: Record<string, unknown>): string | undefined {
  const id = line.id;
  if (id === undefined || id === null) return undefined;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return String(id);
  if (typeof id !== 'string' || id.trim() === '') fail('invalid-type', 'id', `expected a non-empty string, got ${describe(id)}`);
  return id.trim();
}

function resolveLabels(line: Record<string, unknown>, defaults: PreferenceDefaults): Pick<PreferenceRecord, 'set' | 'category' | 'phase'> {
  const lineSet = optionalEnum(line, 'set', PreferenceSet.options, 'unknown-set');
  const phase = optionalEnum(line, 'phase', PreferencePhase.options, 'unknown-phase');
  const lineCategory = optionalString(line, 'category');
  const lineSubcategory = lineCategory === undefined ? undefined : resolveSubcategory(lineCategory);
  const defaultSubcategory = defaults.category === undefined ? undefined : resolveSubcategory(defaults.category);
  const set = lineSet ?? lineSubcategory?.set ?? defaults.set ?? defaultSubcategory?.set ?? 'general';
  const category = lineCategory !== undefined ? (lineSubcategory?.id ?? lineCategory) : (defaultSubcategory?.id ?? defaults.category ?? UNCATEGORIZED);
  return { set, category, phase: phase ?? defaults.phase ?? defaultPhaseOf(set) };
}

function lineProvenance(line: Record<string, unknown>, at: LineLocation): Record<string, unknown> {
  const given = line.provenance;
  if (given === undefined || given === null) return { source: { file: at.source, line: at.line } };
  if (!isPlainObject(given)) fail('invalid-type', 'provenance', `expected an object, got ${describe(given)}`);
  // The line's own `source` (an upstream data set, say) is kept beside where this copy was read.
  const source = given.source === undefined ? { file: at.source, line: at.line } : { file: at.source, line: at.line, original: given.source };
  return { ...given, source };
}

function parseObject(line: Record<string, unknown>, at: LineLocation, defaults: PreferenceDefaults): Extract<ParsedPreferenceLine, { ok: true }> {
  if (line.chosen === undefined) fail('missing-field', 'chosen', 'is absent');
  if (line.rejected === undefined) fail('missing-field', 'rejected', 'is absent');
  let pair: { prompt: ChatTurn[]; chosen: string; rejected: string };
  if (line.prompt !== undefined && line.prompt !== null) {
    const prompt = explicitPrompt(line.prompt);
    pair = { prompt, chosen: responseAfterPrompt(line.chosen, 'chosen', prompt), rejected: responseAfterPrompt(line.rejected, 'rejected', prompt) };
  } else {
    pair = implicitPrompt(line.chosen, line.rejected);
  }
  if (pair.chosen.trim() === '') fail('empty-response', 'chosen', 'the response is empty');
  if (pair.rejected.trim() === '') fail('empty-response', 'rejected', 'the response is empty');
  if (normalizeText(pair.chosen) === normalizeText(pair.rejected)) fail('identical-responses', 'rejected', 'is the same text as chosen (after normalization)');

  const labels = resolveLabels(line, defaults);
  const margin = lineMargin(line);
  const id = lineId(line);
  const provenance = lineProvenance(line, at);
  const key = normalizedPairText(pair.prompt, pair.chosen, pair.rejected);
  const digest = pairDigest(key);
  const candidate = {
    id: id ?? digest,
    prompt: pair.prompt,
    chosen: [{ role: 'assistant' as const, content: pair.chosen }],
    rejected: [{ role: 'assistant' as const, content: pair.rejected }],
    ...labels,
    ...(margin === undefined ? {} : { margin }),
    provenance,
  };
  const checked = PreferenceRecord.safeParse(candidate);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    fail('invalid-type', issue.path.map(String).join('.') || '(line)', issue.message);
  }
  return { ok: true, record: checked.data, promptKey: normalizedPromptKey(pair.prompt), pairText: key, digest };
}

/**
 * Reads one non-blank JSONL line. Never throws for bad data: a line that cannot become a record
 * comes back as `{ok: false, reject}` with its reason, field and message.
 */
export function parsePreferenceLine(text: string, at: LineLocation, defaults: PreferenceDefaults = {}): ParsedPreferenceLine {
  try {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      fail('invalid-json', '(line)', `not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (!isPlainObject(value)) fail('invalid-type', '(line)', `expected a JSON object, got ${describe(value)}`);
    return parseObject(value, at, defaults);
  } catch (error) {
    if (!(error instanceof LineError)) throw error;
    return { ok: false, reject: { source: at.source, line: at.line, reason: error.reason, field: error.field, message: error.message } };
  }
}
