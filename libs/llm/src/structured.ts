/**
 * Structured outputs: the JSON in a model's reply, checked against a zod schema. The reply may be
 * bare JSON, a ```json fenced block, or prose around one JSON object or array (the first balanced
 * `{…}` or `[…]` span is taken). Nothing here throws for a malformed reply: a failure is a reason a
 * person (and the model, when re-asked) can read.
 */
import type { z } from 'zod';

export type JsonExtraction = { ok: true; value: unknown } | { ok: false; reason: string };

export function extractJson(text: string): JsonExtraction {
  const fenced = /```[ \t]*(?:json|JSON)?[ \t]*\r?\n?([\s\S]*?)```/.exec(text);
  if (fenced) return parse(fenced[1].trim(), 'the ```json block');
  const trimmed = text.trim();
  const whole = parse(trimmed, 'the reply');
  if (whole.ok) return whole;
  const span = firstJsonSpan(trimmed);
  if (span === undefined) return { ok: false, reason: 'the reply holds no JSON object or array' };
  return parse(span, 'the JSON span of the reply');
}

function parse(text: string, what: string): JsonExtraction {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: `${what} is not valid JSON (${error instanceof Error ? error.message : String(error)})` };
  }
}

/** From the first `{` or `[` to the bracket that closes it (to the end when none does), skipping brackets inside strings; undefined without one. */
function firstJsonSpan(text: string): string | undefined {
  const start = text.search(/[{[]/);
  if (start < 0) return undefined;
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) return text.slice(start, i + 1);
    }
  }
  return text.slice(start);
}

/** Zod issues as one line: `path: message; path: message`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`).join('; ');
}

export type StructuredParse<T> = { ok: true; value: T } | { ok: false; reason: string };

/** The reply's JSON, validated by `schema`. */
export function parseStructured<T>(text: string, schema: z.ZodType<T>): StructuredParse<T> {
  const json = extractJson(text);
  if (!json.ok) return json;
  const checked = schema.safeParse(json.value);
  return checked.success ? { ok: true, value: checked.data } : { ok: false, reason: `the reply's JSON does not match the schema (${describeIssues(checked.error)})` };
}

/** The user turn that asks the model to fix its reply. */
export function repairPrompt(reason: string): string {
  return `Your previous reply could not be used: ${reason}. Reply again with only the corrected JSON, no other text.`;
}
