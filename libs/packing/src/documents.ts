import { CorpusDocument } from '@xyp/contracts';

/** Why an input line was not packed. */
export const REJECT_REASONS = [
  'malformed-json',
  'invalid-utf8',
  'line-too-long',
  'not-an-object',
  'missing-text',
  'empty-text',
  'wrong-type',
  'missing-field',
  'invalid-field',
  'tokenizer-error',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** One line of the rejects artifact (`rejects.jsonl`). */
export interface RejectRecord {
  /** 1-based line number in the input file. */
  line: number;
  reason: RejectReason;
  detail: string;
  /** The document id, when the line got far enough to have one. */
  id?: string;
}

export type LineResult = { ok: true; doc: CorpusDocument } | { ok: false; reason: RejectReason; detail: string; id?: string };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** True when a string has no lone UTF-16 surrogate (which has no UTF-8 encoding). */
function isWellFormed(text: string): boolean {
  const native = (text as unknown as { isWellFormed?: () => boolean }).isWellFormed;
  if (typeof native === 'function') return native.call(text);
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

function idOf(value: object): string | undefined {
  const id = (value as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

/**
 * Parses one JSONL line (without its newline) into a `CorpusDocument` of `@xyp/contracts`, or
 * says why not: bytes that are not UTF-8 (`invalid-utf8`, also for `\uD800`-style escapes of
 * lone surrogates in `text`), JSON that does not parse, a value that is not an object, a missing,
 * empty (or whitespace-only) or non-string `text`, or another field that breaks the schema.
 */
export function parseCorpusLine(bytes: Uint8Array): LineResult {
  let source: string;
  try {
    source = utf8.decode(bytes);
  } catch {
    return { ok: false, reason: 'invalid-utf8', detail: 'line is not valid UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (error) {
    return { ok: false, reason: 'malformed-json', detail: error instanceof Error ? error.message : 'JSON.parse failed' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not-an-object', detail: `expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}` };
  }
  const id = idOf(value);
  const parsed = CorpusDocument.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue.path[0] ?? 'document');
    const raw = (value as Record<string, unknown>)[field];
    const detail = `${field}: ${issue.message}`;
    if (field === 'text') {
      if (raw === undefined) return { ok: false, reason: 'missing-text', detail, id };
      if (typeof raw !== 'string') return { ok: false, reason: 'wrong-type', detail, id };
      return { ok: false, reason: 'empty-text', detail, id };
    }
    if (raw === undefined) return { ok: false, reason: 'missing-field', detail, id };
    if (issue.code === 'invalid_type' || issue.code === 'invalid_union') return { ok: false, reason: 'wrong-type', detail, id };
    return { ok: false, reason: 'invalid-field', detail, id };
  }
  const doc = parsed.data;
  if (!/\S/.test(doc.text)) return { ok: false, reason: 'empty-text', detail: 'text: only whitespace', id: doc.id };
  if (!isWellFormed(doc.text)) return { ok: false, reason: 'invalid-utf8', detail: 'text: lone UTF-16 surrogate escape', id: doc.id };
  return { ok: true, doc };
}

/** Rejected over all documents in (kept + rejected); 0 for an empty input. */
export function rejectRate(kept: number, rejected: number): number {
  return kept + rejected === 0 ? 0 : rejected / (kept + rejected);
}
