/**
 * The generators' inputs: one JSON object per line, read as a stream (a line at a time, never the
 * whole file), each line becoming one input record — a valid input, or an invalid one that the
 * run records as `failed` with its line number, so every line is accounted for:
 *
 *   selfqa    `{id?, category, text}` or `{id?, category, data}` (structured knowledge, rendered by
 *             `renderKnowledge` of `@xyp/synthesis` when prompted)
 *   evolve    `{id?, category, instruction, response?}`, or an SFT chat line `{id?, category,
 *             messages}` (the first user turn is the instruction, the assistant turn after it the response)
 *   analysis  `{id?, category, topic, material?}`
 *   ensemble  `{id?, category, query}`, or a chat line (the first user turn is the query)
 *
 * Blank lines are skipped (not inputs). A line without an id gets `line-<n>-<12 hex>`: the line
 * number and the SHA-256 of the line's text, stable while the file is. Invalid records:
 *
 *   `malformed-json`     the line is not JSON, or not a JSON object
 *   `invalid-input`      a field is missing or of the wrong type (the detail names it)
 *   `unknown-category`   `resolveCategory` refused the category (the detail is its error text)
 *   `duplicate-id`       an earlier line has the same id; recorded under `<id>#line-<n>` so the
 *                        first line keeps the id and every line still has exactly one outcome
 *
 * The ids seen are kept in a set to find duplicates: memory grows with the number of ids (tens
 * of bytes each), not with the size of the lines.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { resolveCategory, type AnalysisExemplar } from '@xyp/synthesis';

export type InputKind = 'selfqa' | 'evolve' | 'analysis' | 'ensemble';

/** What each generator reads from a line, besides its id and category. */
export interface InputValues {
  /** The knowledge: a text, or structured data for `renderKnowledge`. */
  selfqa: { knowledge: unknown };
  evolve: { instruction: string; response?: string };
  analysis: { topic: string; material?: string };
  ensemble: { query: string };
}

export type InvalidInputReason = 'malformed-json' | 'invalid-input' | 'unknown-category' | 'duplicate-id';

/** A line that is an input: its id, taxonomy category id, line number and the generator's value. */
export interface ValidInput<T> {
  kind: 'input';
  id: string;
  /** The taxonomy id (`resolveCategory(...).id`), whatever alias the line used. */
  category: string;
  line: number;
  value: T;
}

/** A line that is not: recorded as `failed` with `reason` and `detail` (which names the line). */
export interface InvalidInput {
  kind: 'invalid';
  id: string;
  /** The category as written (trimmed), or `(none)`. */
  category: string;
  line: number;
  reason: InvalidInputReason;
  detail: string;
}

export type InputRecord<T> = ValidInput<T> | InvalidInput;

/** The category an invalid record is counted under when the line gave none. */
export const NO_CATEGORY = '(none)';

type JsonObject = Record<string, unknown>;
type Parsed<T> = { ok: true; value: T } | { ok: false; detail: string };

const isObject = (value: unknown): value is JsonObject => value !== null && typeof value === 'object' && !Array.isArray(value);
const nonBlank = (value: unknown): value is string => typeof value === 'string' && value.trim().length > 0;

/** `line-<n>-<first 12 hex of SHA-256 of the line>`. */
export function derivedInputId(line: number, text: string): string {
  return `line-${line}-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
}

/** The first user turn of a chat line and the assistant turn right after it. */
function firstUserTurn(o: JsonObject): Parsed<{ user: string; assistant?: string }> {
  const messages = o['messages'];
  if (!Array.isArray(messages)) return { ok: false, detail: 'messages: not an array' };
  const at = messages.findIndex((m) => isObject(m) && m['role'] === 'user');
  if (at < 0) return { ok: false, detail: 'messages: no user turn' };
  const user = (messages[at] as JsonObject)['content'];
  if (!nonBlank(user)) return { ok: false, detail: `messages[${at}].content: the first user turn is empty` };
  const next = messages[at + 1];
  const assistant = isObject(next) && next['role'] === 'assistant' && nonBlank(next['content']) ? next['content'] : undefined;
  return { ok: true, value: { user, ...(assistant !== undefined ? { assistant } : {}) } };
}

function optionalText(o: JsonObject, field: string): Parsed<string | undefined> {
  const value = o[field];
  if (value === undefined || value === null) return { ok: true, value: undefined };
  if (typeof value !== 'string') return { ok: false, detail: `${field}: not a string` };
  return { ok: true, value: value.trim().length > 0 ? value : undefined };
}

const VALUE_PARSERS: { [K in InputKind]: (o: JsonObject) => Parsed<InputValues[K]> } = {
  selfqa: (o) => {
    if (o['text'] !== undefined && o['data'] !== undefined) return { ok: false, detail: 'text and data: give one of the two, not both' };
    if (o['text'] !== undefined) return nonBlank(o['text']) ? { ok: true, value: { knowledge: o['text'] } } : { ok: false, detail: 'text: empty or not a string' };
    if (o['data'] !== undefined && o['data'] !== null) return { ok: true, value: { knowledge: o['data'] } };
    return { ok: false, detail: 'text or data: missing (a document is {id, category, text} or {id, category, data})' };
  },
  evolve: (o) => {
    if (o['messages'] !== undefined) {
      const turn = firstUserTurn(o);
      return turn.ok ? { ok: true, value: { instruction: turn.value.user, ...(turn.value.assistant !== undefined ? { response: turn.value.assistant } : {}) } } : turn;
    }
    if (!nonBlank(o['instruction'])) return { ok: false, detail: 'instruction: missing or empty (a seed is {id, category, instruction} or {id, category, messages})' };
    const response = optionalText(o, 'response');
    if (!response.ok) return response;
    return { ok: true, value: { instruction: o['instruction'], ...(response.value !== undefined ? { response: response.value } : {}) } };
  },
  analysis: (o) => {
    if (!nonBlank(o['topic'])) return { ok: false, detail: 'topic: missing or empty (a topic is {id, category, topic, material?})' };
    const material = optionalText(o, 'material');
    if (!material.ok) return material;
    return { ok: true, value: { topic: o['topic'], ...(material.value !== undefined ? { material: material.value } : {}) } };
  },
  ensemble: (o) => {
    if (o['messages'] !== undefined) {
      const turn = firstUserTurn(o);
      return turn.ok ? { ok: true, value: { query: turn.value.user } } : turn;
    }
    if (!nonBlank(o['query'])) return { ok: false, detail: 'query: missing or empty (a query is {id, category, query} or {id, category, messages})' };
    return { ok: true, value: { query: o['query'] } };
  },
};

function idOf(o: JsonObject, line: number, text: string): Parsed<string> {
  const id = o['id'];
  if (id === undefined || id === null || id === '') return { ok: true, value: derivedInputId(line, text) };
  if (typeof id === 'number' && Number.isFinite(id)) return { ok: true, value: String(id) };
  if (typeof id !== 'string') return { ok: false, detail: 'id: not a string' };
  return { ok: true, value: id };
}

/** The lines of a file as a stream, numbered from 1 (`\r\n` or `\n`). */
export async function* fileLines(path: string): AsyncGenerator<string> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of lines) yield line;
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** The input records a file holds: its non-blank lines, as `parseInputLines` skips blank ones (a progress total). */
export async function countInputLines(path: string): Promise<number> {
  let count = 0;
  for await (const line of fileLines(path)) if (line.trim().length > 0) count++;
  return count;
}

/** Input records of `kind` from lines (any iterable: a file's `fileLines`, an array in a test). */
export async function* parseInputLines<K extends InputKind>(kind: K, lines: AsyncIterable<string> | Iterable<string>, where = 'input'): AsyncGenerator<InputRecord<InputValues[K]>> {
  const seen = new Set<string>();
  const parseValue = VALUE_PARSERS[kind] as (o: JsonObject) => Parsed<InputValues[K]>;
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim().length === 0) continue;
    const invalid = (id: string, category: string, reason: InvalidInputReason, detail: string): InvalidInput => ({ kind: 'invalid', id, category, line, reason, detail: `${where}:${line}: ${detail}` });
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      yield invalid(derivedInputId(line, text), NO_CATEGORY, 'malformed-json', `not valid JSON (${error instanceof Error ? error.message : String(error)})`);
      continue;
    }
    if (!isObject(value)) {
      yield invalid(derivedInputId(line, text), NO_CATEGORY, 'malformed-json', 'not a JSON object');
      continue;
    }
    const rawCategory = typeof value['category'] === 'string' && value['category'].trim().length > 0 ? value['category'].trim() : undefined;
    const id = idOf(value, line, text);
    if (!id.ok) {
      yield invalid(derivedInputId(line, text), rawCategory ?? NO_CATEGORY, 'invalid-input', id.detail);
      continue;
    }
    if (seen.has(id.value)) {
      yield invalid(`${id.value}#line-${line}`, rawCategory ?? NO_CATEGORY, 'duplicate-id', `id ${JSON.stringify(id.value)} is used by an earlier line`);
      continue;
    }
    seen.add(id.value);
    if (rawCategory === undefined) {
      yield invalid(id.value, NO_CATEGORY, 'invalid-input', 'category: missing or empty');
      continue;
    }
    let category: string;
    try {
      category = resolveCategory(rawCategory).id;
    } catch (error) {
      yield invalid(id.value, rawCategory, 'unknown-category', error instanceof Error ? error.message : String(error));
      continue;
    }
    const parsed = parseValue(value);
    if (!parsed.ok) {
      yield invalid(id.value, category, 'invalid-input', parsed.detail);
      continue;
    }
    yield { kind: 'input', id: id.value, category, line, value: parsed.value };
  }
}

/** Input records of `kind` from a JSONL file, streamed; details name the file and line. */
export function readInputs<K extends InputKind>(kind: K, path: string): AsyncGenerator<InputRecord<InputValues[K]>> {
  return parseInputLines(kind, fileLines(path), path);
}

/**
 * The expert exemplars of the analysis generator: `{id?, category, topic, material?, analysis}` per
 * line. They are configuration, few and hand-written, so they are read whole and any bad line
 * fails the call, naming the file and line.
 */
export async function readAnalysisExemplars(source: string | AsyncIterable<string> | Iterable<string>, where = typeof source === 'string' ? source : 'exemplars'): Promise<AnalysisExemplar[]> {
  const exemplars: AnalysisExemplar[] = [];
  const ids = new Set<string>();
  let line = 0;
  for await (const text of typeof source === 'string' ? fileLines(source) : source) {
    line++;
    if (text.trim().length === 0) continue;
    const fail = (detail: string): never => {
      throw new Error(`${where}:${line}: ${detail}`);
    };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return fail(`not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (!isObject(value)) return fail('not a JSON object');
    const id = idOf(value, line, text);
    if (!id.ok) return fail(id.detail);
    if (ids.has(id.value)) fail(`id ${JSON.stringify(id.value)} is used by an earlier line`);
    ids.add(id.value);
    if (!nonBlank(value['category'])) fail('category: missing or empty');
    let category = '';
    try {
      category = resolveCategory(value['category'] as string).id;
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error));
    }
    if (!nonBlank(value['topic'])) fail('topic: missing or empty (an exemplar is {id, category, topic, material?, analysis}; the topic is the few-shot user turn)');
    if (!nonBlank(value['analysis'])) fail('analysis: missing or empty');
    const material = optionalText(value, 'material');
    if (!material.ok) return fail(material.detail);
    exemplars.push({ id: id.value, category, topic: value['topic'] as string, analysis: value['analysis'] as string, ...(material.value !== undefined ? { material: material.value } : {}) });
  }
  return exemplars;
}
