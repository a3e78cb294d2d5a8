/**
 * SFT ingest: JSONL chat conversations (and the common prompt/response and Alpaca layouts) read
 * line by line, each validated against what TRL's and OpenRLHF's chat templates expect, exact
 * duplicates removed, and split into train and held-out by a salted hash of the first user
 * message. Every non-blank line ends either accepted or in the rejects with its line number, a
 * reason code, the field at fault and a message; nothing accepted is dropped.
 *
 * Line reading, text normalization and the split hash are `@xyp/preference-data`'s (`readLines`,
 * `normalizeText`, `splitOf`), so SFT and preference splits follow one rule.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { z } from 'zod';
import { type ChatTurn, resolveSubcategory } from '@xyp/contracts';
import { normalizeText, readLines, splitOf } from '@xyp/preference-data';

/** One accepted conversation. Structurally an `SftExample` of `@xyp/engine` (`{category, messages}`) with an id and its origin. */
export interface SftConversation {
  /** The line's `id` (a string, or a number as text), else `line-<n>`. */
  id: string;
  /** A subcategory id when the line's category names one (id, Chinese name or English label), else the category as given (trimmed). */
  category: string;
  messages: ChatTurn[];
  /** The line's own `source` when it is a string (the sample set says `"sample"`). */
  source?: string;
  /** The input's 1-based line number. */
  line: number;
}

export const SFT_REJECT_REASONS = [
  /** The line is not JSON. */
  'invalid-json',
  /** The line is not an object, or a field has the wrong type (`messages` not an array, `content` a number, `category` empty, …). */
  'invalid-type',
  /** Neither `messages`, nor `prompt` with `response`/`completion`, nor `instruction` with `output`. */
  'missing-field',
  /** `messages` is an empty array. */
  'empty-messages',
  /** A `role` other than `system`, `user`, `assistant`. */
  'unknown-role',
  /** A message's content (or a prompt, response, instruction, output) is empty or only whitespace. */
  'empty-content',
  /** A system message after the first position. */
  'misplaced-system',
  /** The first message after the optional system message is not the user's. */
  'first-turn-not-user',
  /** Two user or two assistant messages in a row. */
  'roles-not-alternating',
  /** No assistant message at all: nothing to train on. */
  'no-assistant',
  /** The last message is not the assistant's. */
  'final-turn-not-assistant',
  /** Same messages (roles and contents, exactly) as an earlier accepted line. */
  'duplicate',
] as const;
export const SftRejectReason = z.enum(SFT_REJECT_REASONS);
export type SftRejectReason = z.infer<typeof SftRejectReason>;

/** One rejected line, as written to `rejects.jsonl`. */
export interface SftReject {
  /** The input's name (its path, or `options.source`). */
  source: string;
  /** 1-based line number, blank lines counted. */
  line: number;
  reason: SftRejectReason;
  /** The field at fault (`messages[2].role`, `output`, `category`); absent when the whole line is (invalid JSON, a duplicate). */
  field?: string;
  /** `field: what is wrong`, or `duplicate of line N`. */
  message: string;
  /** For `duplicate`: the line it repeats. */
  duplicateOf?: number;
}

export type SftSide = 'train' | 'heldOut';

export interface SftCounts {
  /** Non-blank lines read; `accepted + rejected`. */
  lines: number;
  /** Blank lines (skipped; still counted in line numbers). */
  blankLines: number;
  /** UTF-8 bytes read, newlines included. */
  bytes: number;
  accepted: number;
  /** Every reject, duplicates included. */
  rejected: number;
  /** Rejects of reason `duplicate`. */
  duplicates: number;
  byReason: Record<SftRejectReason, number>;
  train: number;
  heldOut: number;
  /** Conversations moved to held-out so that their category has one (see `ensureHeldOutPerCategory`). */
  promoted: number;
  byCategory: Record<string, { train: number; heldOut: number }>;
}

export interface SftProgress {
  lines: number;
  bytes: number;
  accepted: number;
  rejected: number;
}

export const SftIngestSettings = z.object({
  /** Category of lines without one (resolved like a line's); else `uncategorized`. */
  defaultCategory: z.string().min(1).optional(),
  /** Share of first user messages held out. */
  heldOutFraction: z.number().min(0).max(1).default(0.1),
  /** Salt of the split hash. */
  seed: z.union([z.string(), z.number()]).default(0),
  /** Lines between two `onProgress` calls (one more comes at the end). */
  progressEvery: z.number().int().positive().default(10_000),
  /** The name rejects cite for an iterable input (a path input is cited by its path). */
  source: z.string().min(1).optional(),
});
export type SftIngestSettings = z.input<typeof SftIngestSettings>;

export interface SftStreamOptions extends SftIngestSettings {
  /** Every accepted conversation with its side, in input order; awaited. */
  onConversation(conversation: SftConversation, side: SftSide): void | Promise<void>;
  /** Every rejected line, duplicates included; awaited. */
  onReject(reject: SftReject): void | Promise<void>;
  onProgress?(progress: SftProgress): void;
}

export interface SftIngestOptions extends SftIngestSettings {
  /**
   * After the hash split, give every category with at least two distinct first user messages
   * at least one held-out conversation (default true): see `ingestSft`.
   */
  ensureHeldOutPerCategory?: boolean;
  onProgress?(progress: SftProgress): void;
}

export interface SftIngestResult {
  train: SftConversation[];
  heldOut: SftConversation[];
  rejects: SftReject[];
  counts: SftCounts;
}

// ---------------------------------------------------------------------------------------------
// One line
// ---------------------------------------------------------------------------------------------

/** A message before validation, with the field paths its role and content came from. */
interface Draft {
  role: unknown;
  content: unknown;
  rolePath: string;
  contentPath: string;
}

/** What `parseSftLine` makes of one line. */
export type SftLineResult = { ok: true; conversation: Omit<SftConversation, 'line'> } | { ok: false; reason: SftRejectReason; field?: string; message: string };

const ROLES = new Set(['system', 'user', 'assistant']);

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function fail(reason: SftRejectReason, field: string, what: string): SftLineResult {
  return { ok: false, reason, field, message: `${field}: ${what}` };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Message drafts of a `messages` (or `prompt`/`completion` list) array. */
function listDrafts(list: unknown[], path: string): Draft[] | SftLineResult {
  const out: Draft[] = [];
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (!isObject(item)) return fail('invalid-type', `${path}[${i}]`, `expected a {role, content} object, got ${typeName(item)}`);
    out.push({ role: item.role, content: item.content, rolePath: `${path}[${i}].role`, contentPath: `${path}[${i}].content` });
  }
  return out;
}

/** A string field as one message, or a message list. */
function partDrafts(value: unknown, path: string, role: 'user' | 'assistant'): Draft[] | SftLineResult {
  if (typeof value === 'string') return [{ role, content: value, rolePath: path, contentPath: path }];
  if (Array.isArray(value)) return listDrafts(value, path);
  return fail('invalid-type', path, `expected a string or a list of chat messages, got ${typeName(value)}`);
}

/** An optional top-level `system` string of the converted layouts. */
function systemDraft(object: Record<string, unknown>): Draft[] | SftLineResult {
  if (object.system === undefined) return [];
  if (typeof object.system !== 'string') return fail('invalid-type', 'system', `expected a string, got ${typeName(object.system)}`);
  return object.system.trim() === '' ? [] : [{ role: 'system', content: object.system, rolePath: 'system', contentPath: 'system' }];
}

/** The line's messages, from whichever layout it uses. */
function draftsOf(object: Record<string, unknown>): Draft[] | SftLineResult {
  if (object.messages !== undefined) {
    if (!Array.isArray(object.messages)) return fail('invalid-type', 'messages', `expected an array of chat messages, got ${typeName(object.messages)}`);
    if (object.messages.length === 0) return fail('empty-messages', 'messages', 'no messages');
    return listDrafts(object.messages, 'messages');
  }
  if (object.instruction !== undefined) {
    // Alpaca: instruction (+ input) → one user turn; output → the assistant turn.
    const system = systemDraft(object);
    if (!Array.isArray(system)) return system;
    if (typeof object.instruction !== 'string') return fail('invalid-type', 'instruction', `expected a string, got ${typeName(object.instruction)}`);
    if (object.input !== undefined && object.input !== null && typeof object.input !== 'string') return fail('invalid-type', 'input', `expected a string, got ${typeName(object.input)}`);
    if (object.output === undefined) return fail('missing-field', 'output', 'an Alpaca line (instruction) needs an output');
    if (typeof object.output !== 'string') return fail('invalid-type', 'output', `expected a string, got ${typeName(object.output)}`);
    const input = typeof object.input === 'string' ? object.input.trim() : '';
    const userContent = input === '' ? object.instruction : `${object.instruction}\n\n${input}`;
    return [...system, { role: 'user', content: userContent, rolePath: 'instruction', contentPath: 'instruction' }, { role: 'assistant', content: object.output, rolePath: 'output', contentPath: 'output' }];
  }
  if (object.prompt !== undefined) {
    // Prompt/response (OpenRLHF `--input_key prompt --output_key response`) or TRL's prompt/completion, each a string or a message list.
    const key = object.response !== undefined ? 'response' : object.completion !== undefined ? 'completion' : undefined;
    if (key === undefined) return fail('missing-field', 'response', 'a prompt line needs a response or a completion');
    const system = systemDraft(object);
    if (!Array.isArray(system)) return system;
    const prompt = partDrafts(object.prompt, 'prompt', 'user');
    if (!Array.isArray(prompt)) return prompt;
    const response = partDrafts(object[key], key, 'assistant');
    if (!Array.isArray(response)) return response;
    return [...system, ...prompt, ...response];
  }
  return fail('missing-field', 'messages', 'no messages, no prompt with a response or completion, no instruction with an output');
}

/**
 * The turn rule (what TRL's and OpenRLHF's chat templates expect, e.g. the Llama-2 and Mistral
 * templates that raise "Conversation roles must alternate user/assistant/user/assistant"): an
 * optional system message first, then turns alternating user, assistant, user, …, ending with an
 * assistant turn. Contents are non-empty after trimming (and kept as given).
 */
function validate(drafts: readonly Draft[]): ChatTurn[] | SftLineResult {
  const messages: ChatTurn[] = [];
  for (const draft of drafts) {
    if (typeof draft.role !== 'string') return fail('invalid-type', draft.rolePath, `expected a role string, got ${typeName(draft.role)}`);
    if (!ROLES.has(draft.role)) return fail('unknown-role', draft.rolePath, `expected system, user or assistant, got ${JSON.stringify(draft.role)}`);
    if (typeof draft.content !== 'string') return fail('invalid-type', draft.contentPath, `expected a string, got ${typeName(draft.content)}`);
    if (draft.content.trim() === '') return fail('empty-content', draft.contentPath, 'empty');
    messages.push({ role: draft.role as ChatTurn['role'], content: draft.content });
  }
  const start = messages[0]?.role === 'system' ? 1 : 0;
  for (let i = start; i < messages.length; i++) {
    const { role } = messages[i];
    const at = drafts[i].rolePath;
    if (role === 'system') return fail('misplaced-system', at, `a system message is allowed only first, found at position ${i + 1}`);
    if (i === start && role !== 'user') return fail('first-turn-not-user', at, `the first turn${start === 1 ? ' after the system message' : ''} must be the user's, got ${role}`);
    if (i > start && role === messages[i - 1].role) return fail('roles-not-alternating', at, `two ${role} turns in a row (positions ${i} and ${i + 1}); turns must alternate user/assistant`);
  }
  if (!messages.some((m) => m.role === 'assistant')) return fail('no-assistant', drafts[drafts.length - 1]?.rolePath ?? 'messages', 'no assistant message: nothing to train on');
  if (messages[messages.length - 1].role !== 'assistant') return fail('final-turn-not-assistant', drafts[drafts.length - 1].rolePath, `the last message must be the assistant's, got ${messages[messages.length - 1].role}`);
  return messages;
}

/**
 * One JSONL line → a conversation (without its line number) or a reject. `defaultCategory` is
 * used when the line has no `category`.
 */
export function parseSftLine(text: string, lineNumber: number, defaultCategory?: string): SftLineResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: 'invalid-json', message: `not valid JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  if (!isObject(value)) return fail('invalid-type', '(line)', `expected a JSON object, got ${typeName(value)}`);
  const drafts = draftsOf(value);
  if (!Array.isArray(drafts)) return drafts;
  const messages = validate(drafts);
  if (!Array.isArray(messages)) return messages;

  let category: string;
  if (value.category === undefined || value.category === null) category = defaultCategory ?? 'uncategorized';
  else if (typeof value.category !== 'string' || value.category.trim() === '') return fail('invalid-type', 'category', `expected a non-empty string, got ${typeName(value.category) === 'string' ? 'an empty string' : typeName(value.category)}`);
  else category = value.category.trim();
  category = resolveSubcategory(category)?.id ?? category;

  let id = `line-${lineNumber}`;
  if (value.id !== undefined && value.id !== null) {
    if (typeof value.id === 'number' && Number.isFinite(value.id)) id = String(value.id);
    else if (typeof value.id === 'string' && value.id.trim() !== '') id = value.id;
    else return fail('invalid-type', 'id', `expected a non-empty string or a number, got ${typeName(value.id) === 'string' ? 'an empty string' : typeName(value.id)}`);
  }
  const conversation: Omit<SftConversation, 'line'> = { id, category, messages };
  if (typeof value.source === 'string') conversation.source = value.source;
  return { ok: true, conversation };
}

/** The split key: the normalized (NFKC, whitespace folded, lower-cased) first user message. */
export function sftPromptKey(messages: readonly ChatTurn[]): string {
  return normalizeText(messages.find((m) => m.role === 'user')?.content ?? '');
}

/** sha256 (first 16 bytes, base64) of the exact roles and contents: the duplicate key. */
function messagesDigest(messages: readonly ChatTurn[]): string {
  const hash = createHash('sha256');
  for (const m of messages) hash.update(`${m.role}\u0000${m.content}\u0001`);
  return hash.digest('base64').slice(0, 22);
}

function emptyReasons(): Record<SftRejectReason, number> {
  return Object.fromEntries(SFT_REJECT_REASONS.map((reason) => [reason, 0])) as Record<SftRejectReason, number>;
}

function settingsOf(options: SftIngestSettings, caller: string): z.output<typeof SftIngestSettings> {
  const parsed = SftIngestSettings.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${caller}: ${issue.path.map(String).join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------
// Streaming ingest
// ---------------------------------------------------------------------------------------------

/**
 * Streams every line through parsing, validation, exact de-duplication and the prompt-hash split,
 * calling `onConversation` or `onReject` for each non-blank line. Memory grows only with the
 * duplicate index (a 22-character digest and a line number per accepted conversation). `input` is
 * a file path or an iterable of lines (as `linesOf` of `@xyp/preference-data` yields them).
 * Throws only for bad options or an unreadable file.
 */
export async function streamSft(input: AsyncIterable<string> | Iterable<string> | string, options: SftStreamOptions): Promise<SftCounts> {
  const settings = settingsOf(options, 'streamSft');
  const source = typeof input === 'string' ? input : (settings.source ?? 'input');
  const lines = typeof input === 'string' ? readLines(input) : input;
  const defaultCategory = settings.defaultCategory === undefined ? undefined : (resolveSubcategory(settings.defaultCategory)?.id ?? settings.defaultCategory);
  const seen = new Map<string, number>();
  const counts: SftCounts = { lines: 0, blankLines: 0, bytes: 0, accepted: 0, rejected: 0, duplicates: 0, byReason: emptyReasons(), train: 0, heldOut: 0, promoted: 0, byCategory: {} };
  let reportedAt = -1;
  const progress = (): void => {
    reportedAt = counts.lines;
    options.onProgress?.({ lines: counts.lines, bytes: counts.bytes, accepted: counts.accepted, rejected: counts.rejected });
  };

  let lineNumber = 0;
  for await (const text of lines) {
    lineNumber++;
    counts.bytes += Buffer.byteLength(text, 'utf8') + 1;
    if (text.trim() === '') {
      counts.blankLines++;
      continue;
    }
    counts.lines++;
    const parsed = parseSftLine(text, lineNumber, defaultCategory);
    let reject: SftReject | undefined;
    if (!parsed.ok) {
      reject = { source, line: lineNumber, reason: parsed.reason, ...(parsed.field === undefined ? {} : { field: parsed.field }), message: parsed.message };
    } else {
      const digest = messagesDigest(parsed.conversation.messages);
      const earlier = seen.get(digest);
      if (earlier !== undefined) {
        counts.duplicates++;
        reject = { source, line: lineNumber, reason: 'duplicate', message: `duplicate of line ${earlier}`, duplicateOf: earlier };
      } else {
        seen.set(digest, lineNumber);
        const conversation: SftConversation = { ...parsed.conversation, line: lineNumber };
        const side: SftSide = splitOf(sftPromptKey(conversation.messages), settings.seed, settings.heldOutFraction) === 'test' ? 'heldOut' : 'train';
        counts.accepted++;
        counts[side]++;
        (counts.byCategory[conversation.category] ??= { train: 0, heldOut: 0 })[side]++;
        await options.onConversation(conversation, side);
      }
    }
    if (reject) {
      counts.rejected++;
      counts.byReason[reject.reason]++;
      await options.onReject(reject);
    }
    if (counts.lines % settings.progressEvery === 0) progress();
  }
  if (reportedAt !== counts.lines) progress();
  return counts;
}

/**
 * Reads a whole SFT input into memory: `streamSft`, then (with `ensureHeldOutPerCategory`, the
 * default) a deterministic top-up of the held-out side. For each category, in sorted order,
 * that has no held-out conversation but at least two distinct first user messages, the first
 * user message with the smallest split hash among the category's is moved to held-out — with
 * every conversation of any category that starts with it, so no first user message is on both
 * sides — provided no category is left without a training conversation. A category whose
 * conversations all share one first user message stays in train only. Note that a promotion
 * depends on the whole input, not on the prompt alone: a prompt moved here may fall back to train
 * when more data of its category arrives; for splits stable across dataset versions pass
 * `ensureHeldOutPerCategory: false` (the pure hash split, as `streamSft` gives).
 */
export async function ingestSft(input: AsyncIterable<string> | Iterable<string> | string, options: SftIngestOptions = {}): Promise<SftIngestResult> {
  const { ensureHeldOutPerCategory = true, ...rest } = options;
  const settings = settingsOf(rest, 'ingestSft');
  const all: { conversation: SftConversation; side: SftSide }[] = [];
  const rejects: SftReject[] = [];
  const counts = await streamSft(input, {
    ...rest,
    onConversation: (conversation, side) => void all.push({ conversation, side }),
    onReject: (reject) => void rejects.push(reject),
  });
  if (ensureHeldOutPerCategory) promoteHeldOut(all, counts, settings.seed);
  return {
    train: all.filter((entry) => entry.side === 'train').map((entry) => entry.conversation),
    heldOut: all.filter((entry) => entry.side === 'heldOut').map((entry) => entry.conversation),
    rejects,
    counts,
  };
}

/** The split hash of a key, as a fraction in [0, 1): the same u `splitOf` compares with the fraction. */
function splitHash(key: string, seed: string | number): number {
  return createHash('sha256').update(`${seed}\u0000${key}`).digest().readUIntBE(0, 6) / 2 ** 48;
}

function promoteHeldOut(all: { conversation: SftConversation; side: SftSide }[], counts: SftCounts, seed: string | number): void {
  const byKey = new Map<string, number[]>();
  all.forEach((entry, index) => {
    const key = sftPromptKey(entry.conversation.messages);
    const list = byKey.get(key);
    if (list) list.push(index);
    else byKey.set(key, [index]);
  });
  for (const category of Object.keys(counts.byCategory).sort()) {
    const tally = counts.byCategory[category];
    if (tally.heldOut > 0) continue;
    const keys = new Set<string>();
    for (const entry of all) if (entry.conversation.category === category) keys.add(sftPromptKey(entry.conversation.messages));
    if (keys.size < 2) continue;
    const ranked = [...keys].sort((a, b) => splitHash(a, seed) - splitHash(b, seed) || (a < b ? -1 : 1));
    for (const key of ranked) {
      const moved = byKey.get(key) ?? [];
      const loss: Record<string, number> = {};
      for (const index of moved) loss[all[index].conversation.category] = (loss[all[index].conversation.category] ?? 0) + 1;
      if (Object.entries(loss).some(([other, n]) => counts.byCategory[other].train - n < 1)) continue;
      for (const index of moved) {
        const entry = all[index];
        entry.side = 'heldOut';
        counts.byCategory[entry.conversation.category].train--;
        counts.byCategory[entry.conversation.category].heldOut++;
        counts.train--;
        counts.heldOut++;
        counts.promoted++;
      }
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

export const SFT_FILES = { train: 'train.jsonl', heldOut: 'held-out.jsonl', rejects: 'rejects.jsonl' } as const;

async function writeLines(path: string, items: readonly unknown[]): Promise<void> {
  const out = createWriteStream(path);
  const failed = once(out, 'error').then(([error]) => Promise.reject(error));
  failed.catch(() => undefined);
  for (const item of items) {
    if (!out.write(`${JSON.stringify(item)}\n`)) await Promise.race([once(out, 'drain'), failed]);
  }
  out.end();
  await Promise.race([once(out, 'finish'), failed]);
}

/** The conversation as a JSONL line writes it: `{id, category, messages, source?}` (what `readSftExamples` reads). */
export function sftLineOf(conversation: SftConversation): { id: string; category: string; messages: ChatTurn[]; source?: string } {
  const { id, category, messages, source } = conversation;
  return source === undefined ? { id, category, messages } : { id, category, messages, source };
}

/** Writes `train.jsonl`, `held-out.jsonl` and `rejects.jsonl` into `dir` (created if missing); returns their paths. */
export async function writeSftCollections(result: Pick<SftIngestResult, 'train' | 'heldOut' | 'rejects'>, dir: string): Promise<{ train: string; heldOut: string; rejects: string }> {
  await mkdir(dir, { recursive: true });
  const paths = { train: join(dir, SFT_FILES.train), heldOut: join(dir, SFT_FILES.heldOut), rejects: join(dir, SFT_FILES.rejects) };
  await writeLines(paths.train, result.train.map(sftLineOf));
  await writeLines(paths.heldOut, result.heldOut.map(sftLineOf));
  await writeLines(paths.rejects, result.rejects);
  return paths;
}
