/**
 * SelfQA (Zhang & Yang, arXiv 2305.11952; seed 二, 金融知识类): instructions generated from a
 * finance encyclopedia document, answered from the same document, then filtered.
 *
 *   1. `renderKnowledge(knowledge)` — structured knowledge (objects, `{columns, rows}` tables,
 *      arrays of rows) to readable `字段: 值` lines first, as the paper converts structured data
 *      to unstructured text before prompting.
 *   2. `selfQaInstructionMessages` → caller's LLM call → `parseInstructions(text)`.
 *   3. `selfQaAnswerMessages` per instruction → caller's LLM call → `parseAnswer(text)`.
 *   4. `filterSelfQa(document, pairs, config)`: every pair ends kept or dropped with a reason,
 *      checked in this order:
 *        `empty`                 instruction or answer blank
 *        `refers-to-document`    instruction or answer points at "the text" (`DOCUMENT_REFERENCES`)
 *        `unsupported-answer`    support score < `minSupport` (default 0.5)
 *        `unsupported-number`    a number of the answer is not in the document
 *        `exact-duplicate`, `near-duplicate`   of an earlier kept instruction (`DuplicateFilter`)
 *
 * Support score of an answer A against document D: the share of A's content tokens (CJK
 * character bigrams and Latin/digit words, `contentTokens`, repeats counted) that occur among D's
 * tokens (a one-character CJK run's unigram matches that character anywhere in D); 0 for an
 * answer with no tokens. Reading comprehension answers reuse the document's
 * wording, so at the default 0.5 at least half the answer's bigrams/words come from the document.
 * Numbers: every number the answer writes in Arabic digits (`numbersIn`, canonical form, list
 * markers like `1.` at a line start excepted) must be among the document's numbers.
 */
import type { ChatTurn } from '@xyp/contracts';
import { z } from 'zod';
import { DuplicateFilter } from './dedup';
import { SynthesisInputError, parseWith } from './errors';
import { SELFQA_ANSWER, SELFQA_INSTRUCTIONS } from './prompts';
import { contentTokens, isCjk, numbersIn, withoutListMarkers } from './text';

// ---------------------------------------------------------------- knowledge to text

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isTable(value: unknown): value is { columns: unknown[]; rows: unknown[][] } {
  return isPlainObject(value) && Object.keys(value).length === 2 && Array.isArray(value['columns']) && Array.isArray(value['rows']) && value['rows'].every(Array.isArray);
}

function scalarText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'boolean') return value ? '是' : '否';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return undefined;
}

function isScalar(value: unknown): boolean {
  return value === null || value === undefined || ['string', 'number', 'bigint', 'boolean'].includes(typeof value);
}

function indentLines(text: string, pad: string): string[] {
  return text.split('\n').map((line) => pad + line);
}

function renderValue(value: unknown, depth: number): string[] {
  const pad = '  '.repeat(depth);
  if (isScalar(value)) {
    const text = scalarText(value);
    return text ? indentLines(text, pad) : [];
  }
  if (isTable(value)) {
    const columns = value.columns.map((c) => String(c));
    const rows = value.rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i]])));
    return renderValue(rows, depth);
  }
  if (Array.isArray(value)) {
    if (value.every(isScalar)) return value.flatMap((v) => (scalarText(v) ? [`${pad}- ${scalarText(v)}`] : []));
    return value.flatMap((v, i) => {
      const body = renderValue(v, depth + 1);
      return body.length > 0 ? [`${pad}${i + 1}.`, ...body] : [];
    });
  }
  if (isPlainObject(value)) {
    return Object.entries(value).flatMap(([key, v]) => {
      if (isScalar(v)) {
        const text = scalarText(v);
        if (!text) return [];
        const [first, ...rest] = text.split('\n');
        return [`${pad}${key}: ${first}`, ...rest.map((line) => `${pad}  ${line}`)];
      }
      const body = renderValue(v, depth + 1);
      return body.length > 0 ? [`${pad}${key}:`, ...body] : [];
    });
  }
  return [];
}

/**
 * Knowledge as readable text: a string as it is (trimmed); an object as `字段: 值` lines, a nested
 * object or list under `字段:` indented two spaces; a `{columns, rows}` table or an array of row
 * objects as numbered blocks (`1.` then its fields, indented); an array of scalars as `- 值`
 * lines. Booleans read 是/否; null, undefined and empty strings are left out.
 */
export function renderKnowledge(knowledge: unknown): string {
  return renderValue(knowledge, 0).join('\n').trim();
}

// ---------------------------------------------------------------- messages and parsing

export interface SelfQaDocument {
  id: string;
  /** Taxonomy id. */
  category: string;
  /** Text, or structured knowledge (`renderKnowledge`). */
  knowledge: unknown;
}

/** Messages of step 1 for a document (its knowledge rendered to text). */
export function selfQaInstructionMessages(document: SelfQaDocument, count: number, categoryName?: string): { promptVersion: string; messages: ChatTurn[] } {
  return { promptVersion: SELFQA_INSTRUCTIONS.version, messages: SELFQA_INSTRUCTIONS.render({ document: renderKnowledge(document.knowledge), count, categoryName }) };
}

/** Messages of step 2: answer `instruction` from the same document. */
export function selfQaAnswerMessages(document: SelfQaDocument, instruction: string): { promptVersion: string; messages: ChatTurn[] } {
  return { promptVersion: SELFQA_ANSWER.version, messages: SELFQA_ANSWER.render({ document: renderKnowledge(document.knowledge), instruction }) };
}

/** A label the model puts before a question or answer (`问题：`, `Q:`, `Instruction:`). */
const ITEM_LABEL = /^(?:\*\*)?(?:问题|问|指令|题目|question|instruction|q)\s*\d*\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*/iu;
/** A list marker: `1.`, `1、`, `1)`, `(1)`, `（1）`, `第1题`, `-`, `*`, `•`, `·`. */
const ITEM_MARKER = /^\s*(?:\d+\s*[.、)）:：](?!\d)|[(（]\d+[)）]|第\d+[题个条][:：、.]?|[-*•·])\s*/u;
const JSON_FENCE = /^```(?:json)?\s*([\s\S]*?)\s*```$/u;

function fromJson(text: string): string[] | undefined {
  const body = text.trim().match(JSON_FENCE)?.[1] ?? text.trim();
  if (!body.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  return parsed.flatMap((entry): string[] => {
    if (typeof entry === 'string') return [entry];
    if (isPlainObject(entry)) {
      for (const key of ['instruction', 'question', 'query', 'prompt', '问题', '指令']) {
        if (typeof entry[key] === 'string') return [entry[key]];
      }
    }
    return [];
  });
}

function cleanItem(text: string): string {
  return text.replace(ITEM_LABEL, '').trim();
}

/**
 * The instructions of a step-1 output: a JSON array (of strings, or of objects with an
 * `instruction`/`question`/`问题` field), possibly in a ```json fence; else a numbered or bulleted
 * list, a line without a marker continuing the item above; else one instruction per non-empty
 * line. Labels (`问题：`, `Question:`) are removed, items trimmed, empty ones dropped.
 */
export function parseInstructions(text: string): string[] {
  const json = fromJson(text);
  if (json) return json.map(cleanItem).filter((s) => s.length > 0);
  const lines = text.split(/\r?\n/u).filter((line) => line.trim().length > 0);
  const marked = lines.some((line) => ITEM_MARKER.test(line));
  if (!marked) return lines.map(cleanItem).filter((s) => s.length > 0);
  const items: string[] = [];
  let current: string | undefined;
  for (const line of lines) {
    if (ITEM_MARKER.test(line)) {
      if (current !== undefined) items.push(current);
      current = line.replace(ITEM_MARKER, '');
    } else if (current !== undefined) {
      current = `${current}\n${line.trim()}`;
    }
    // A line before the first marker is a preamble ("好的，以下是10个问题：") and is skipped.
  }
  if (current !== undefined) items.push(current);
  return items.map(cleanItem).filter((s) => s.length > 0);
}

const ANSWER_LABEL = /^(?:\*\*)?(?:答案|回答|答|answer|a)\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*/iu;

/** The answer of a step-2 output: a leading `问题：…` line dropped if the model echoed it, and a `答案：`/`Answer:` label removed. */
export function parseAnswer(text: string): string {
  let body = text.trim();
  const echoed = body.match(/^(?:问题|question)\s*[:：][^\n]*\n+/iu);
  if (echoed) body = body.slice(echoed[0].length).trim();
  return body.replace(ANSWER_LABEL, '').trim();
}

// ---------------------------------------------------------------- filters

/**
 * Phrases that point at the source document, which the user of the SFT data never sees. Each has
 * an id, named in the drop's detail.
 */
export const DOCUMENT_REFERENCES: readonly { id: string; pattern: RegExp }[] = [
  // Not 根据以上/根据上述: an answer's 根据以上分析 points at its own reasoning.
  { id: 'zh-according-to', pattern: /(?:根据|依据|基于|结合|参考|按照)(?:上文|前文|本文|原文|文本|文章|材料|文档|资料|背景知识|所给|给定|提供的|这段|该段|本段|以上(?:文章|文本|材料|文档|资料)|上述(?:文章|文本|材料|文档|资料))/u },
  // 材料中/文档中 only without a qualifier that makes them real paperwork (申请材料中, 开户文档中).
  { id: 'zh-in-the-text', pattern: /文中|文本中|原文|(?<!申请|证明|提交|审核|相关|所需|开户|贷款|报送|备案)(?:材料|文档)中|段落中|文章中|背景知识/u },
  { id: 'zh-this-document', pattern: /(?:该|本|此|这篇|这段|这份)(?:文档|文本|文章|材料|段落|篇文章|段文字|段话|资料)|本段|本文/u },
  // Not 以上内容/上述内容: an answer's own 以上内容仅供参考 is no pointer to the document.
  { id: 'zh-above', pattern: /(?:上述|以上)(?:文章|文本|材料|文档|段落|资料|文字)|上文|前文/u },
  { id: 'zh-mentioned', pattern: /(?:文章|文本|材料|文档|原文)(?:提到|指出|所述|中提到|中指出|显示|描述)/u },
  { id: 'en-the-text', pattern: /\bthe\s+(?:text|passage|document|article|paragraph|excerpt|given\s+(?:text|information|context|material))\b/iu },
  { id: 'en-according-to', pattern: /\b(?:according\s+to|based\s+on|as\s+(?:stated|mentioned|described)\s+in)\s+(?:the|this)\s+(?:above|text|passage|document|article|paragraph|material|information\s+(?:above|provided|given))/iu },
  { id: 'en-this-text', pattern: /\bthis\s+(?:text|passage|document|article|paragraph|excerpt)\b/iu },
  { id: 'en-above', pattern: /\b(?:mentioned|stated|described|given)\s+above\b|\bthe\s+above\s+(?:text|passage|content|information)\b/iu },
];

/** The id of the first `DOCUMENT_REFERENCES` pattern `text` matches, or undefined. */
export function documentReference(text: string): string | undefined {
  const normalized = text.normalize('NFKC');
  return DOCUMENT_REFERENCES.find((r) => r.pattern.test(normalized))?.id;
}

/** Support score of `answer` in `document`: the share of the answer's content tokens that occur in the document (module comment). */
export function supportScore(answer: string, document: string): number {
  const tokens = contentTokens(answer);
  if (tokens.length === 0) return 0;
  const known = new Set(contentTokens(document));
  // A one-character CJK run of the answer is a unigram token: it matches that character anywhere in the document.
  for (const char of document.normalize('NFKC').toLowerCase()) if (isCjk(char)) known.add(char);
  let supported = 0;
  for (const token of tokens) if (known.has(token)) supported++;
  return supported / tokens.length;
}

/** The numbers `answer` writes (list markers excepted) that `document` does not, in order, each once. */
export function unsupportedNumbers(answer: string, document: string): string[] {
  const known = new Set(numbersIn(document));
  return [...new Set(numbersIn(withoutListMarkers(answer)))].filter((n) => !known.has(n));
}

export const SelfQaFilterConfig = z
  .object({
    /** Support score at or above which an answer is grounded in the document (module comment). */
    minSupport: z.number().min(0).max(1).default(0.5),
    /** Every number of the answer must appear in the document. */
    numbersMustAppear: z.boolean().default(true),
    /** Instructions at or above this estimated Jaccard similarity to an earlier kept one are near duplicates. */
    nearDuplicateThreshold: z.number().gt(0).max(1).default(0.8),
    /** Character shingles of the question's MinHash (short texts: 3). */
    shingleSize: z.number().int().min(1).max(32).default(3),
    permutations: z.number().int().min(8).max(1024).default(128),
    seed: z.number().int().default(0),
  })
  .strict();
export type SelfQaFilterConfig = z.output<typeof SelfQaFilterConfig>;
export type SelfQaFilterConfigInput = z.input<typeof SelfQaFilterConfig>;

export interface SelfQaPair {
  id: string;
  instruction: string;
  answer: string;
}

export type SelfQaDropReason = 'empty' | 'refers-to-document' | 'unsupported-answer' | 'unsupported-number' | 'exact-duplicate' | 'near-duplicate';

export interface SelfQaDrop {
  id: string;
  reason: SelfQaDropReason;
  /** One line: which field and pattern, the score and threshold, the numbers, or the duplicated id. */
  detail: string;
}

export interface SelfQaKept extends SelfQaPair {
  supportScore: number;
}

/**
 * SelfQA's filters over the pairs of one document (module comment). Pass a `DuplicateFilter` to
 * deduplicate across documents too; else one is made for this call. Ids must be unique.
 */
export function filterSelfQa(
  document: string,
  pairs: readonly SelfQaPair[],
  config: SelfQaFilterConfigInput = {},
  duplicates?: DuplicateFilter,
): { kept: SelfQaKept[]; dropped: SelfQaDrop[] } {
  const settings = parseWith(SelfQaFilterConfig, config, 'selfqa');
  const seen = duplicates ?? new DuplicateFilter({ nearDuplicateThreshold: settings.nearDuplicateThreshold, shingleSize: settings.shingleSize, permutations: settings.permutations, seed: settings.seed });
  const kept: SelfQaKept[] = [];
  const dropped: SelfQaDrop[] = [];
  const ids = new Set<string>();
  for (const pair of pairs) {
    if (ids.has(pair.id)) throw new SynthesisInputError(`pairs: id ${pair.id} appears twice`, 'pairs');
    ids.add(pair.id);
    const drop = (reason: SelfQaDropReason, detail: string) => dropped.push({ id: pair.id, reason, detail });
    const instruction = pair.instruction.trim();
    const answer = pair.answer.trim();
    if (instruction.length === 0 || answer.length === 0) {
      drop('empty', instruction.length === 0 ? 'instruction is blank' : 'answer is blank');
      continue;
    }
    const inInstruction = documentReference(instruction);
    const inAnswer = inInstruction === undefined ? documentReference(answer) : undefined;
    if (inInstruction !== undefined || inAnswer !== undefined) {
      drop('refers-to-document', inInstruction !== undefined ? `instruction matches ${inInstruction}` : `answer matches ${inAnswer}`);
      continue;
    }
    const score = supportScore(answer, document);
    if (score < settings.minSupport) {
      drop('unsupported-answer', `support ${score.toFixed(3)} < minSupport ${settings.minSupport}`);
      continue;
    }
    if (settings.numbersMustAppear) {
      const missing = unsupportedNumbers(answer, document);
      if (missing.length > 0) {
        drop('unsupported-number', `not in the document: ${missing.join(', ')}`);
        continue;
      }
    }
    const match = seen.check(pair.id, instruction);
    if (match?.kind === 'exact') {
      drop('exact-duplicate', `same instruction as ${match.of}`);
      continue;
    }
    if (match?.kind === 'near') {
      drop('near-duplicate', `instruction ${match.similarity.toFixed(3)} similar to ${match.of}`);
      continue;
    }
    kept.push({ id: pair.id, instruction, answer, supportScore: score });
  }
  return { kept, dropped };
}
