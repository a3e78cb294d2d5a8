import type { z } from 'zod';
import { MixtureInputError } from './errors';
import { IndexedDocument, LossReportLine, MixtureConfig, Weights, type MixtureConfigInput } from './schemas';

/** Pure parsers: text or already-decoded JSON in, validated plain data out. No file access. */

const NON_FINITE_MARK = '__xyp_non_finite__:';

function show(value: unknown): string {
  if (typeof value === 'number') return String(value); // NaN, Infinity, -0 stay readable
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** First zod issue as `field: message, got value`. */
function describeIssue(error: z.ZodError, value: unknown): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid value';
  if (issue.code === 'unrecognized_keys') return issue.message;
  const field = issue.path.map(String).join('.');
  const message = field.length > 0 && !issue.message.startsWith(field) ? `${field}: ${issue.message}` : issue.message;
  return `${message}, got ${show(valueAt(value, issue.path))}`;
}

function categoryOf(value: unknown): string | undefined {
  const category = valueAt(value, ['category']);
  return typeof category === 'string' && category.length > 0 ? category : undefined;
}

/**
 * JSON.parse that also reads the bare `NaN`, `Infinity` and `-Infinity` Python's json
 * module writes, so that a diverged loss is reported as "loss ... got NaN" instead of
 * as a syntax error.
 */
function parseJsonLine(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const marked = text.replace(/([:[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, `$1"${NON_FINITE_MARK}$2"`);
    if (marked === text) throw error;
    try {
      return JSON.parse(marked, (_key, value: unknown) =>
        typeof value === 'string' && value.startsWith(NON_FINITE_MARK) ? Number(value.slice(NON_FINITE_MARK.length)) : value,
      );
    } catch {
      throw error;
    }
  }
}

function validateLine(value: unknown, source: string, line: number, label: string): LossReportLine {
  const parsed = LossReportLine.safeParse(value);
  if (parsed.success) return parsed.data;
  const category = categoryOf(value);
  const where = category === undefined ? '' : `category "${category}": `;
  throw new MixtureInputError(`${source}:${label}${line}: ${where}${describeIssue(parsed.error, value)}`, source, line, category);
}

/**
 * Parses a JSONL loss report (one `{step, category, loss, tokens?}` object per line).
 * Blank lines are skipped; line numbers in errors are 1-based lines of `text`.
 * @throws MixtureInputError naming `source:line` (and the category when it is readable).
 */
export function parseLossReport(text: string, source = 'losses'): LossReportLine[] {
  const lines = text.split(/\r?\n/);
  const out: LossReportLine[] = [];
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.length === 0) return;
    let value: unknown;
    try {
      value = parseJsonLine(trimmed);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new MixtureInputError(`${source}:${i + 1}: not a JSON object (${reason})`, source, i + 1);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new MixtureInputError(`${source}:${i + 1}: expected a JSON object, got ${show(value)}`, source, i + 1);
    }
    out.push(validateLine(value, source, i + 1, ''));
  });
  return out;
}

/**
 * Validates already-decoded report entries (e.g. the losses of a job result).
 * @throws MixtureInputError naming `source:entry N` (1-based) and the category.
 */
export function validateLossReport(values: readonly unknown[], source = 'losses'): LossReportLine[] {
  return values.map((value, i) => validateLine(value, source, i + 1, 'entry '));
}

/**
 * Reads a weights document: either `{category: weight}` or the controller's own output
 * `{weights: {category: weight}, ...}`, so one stage's decision can feed the next.
 * Weights need not sum to 1 (the controller normalises and says so) but must not all be 0.
 */
export function parseWeights(value: unknown, source = 'weights'): Weights {
  const inner =
    value !== null && typeof value === 'object' && !Array.isArray(value) && 'weights' in value
      ? (value as { weights: unknown }).weights
      : value;
  const parsed = Weights.safeParse(inner);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.map(String).join('.') ?? '';
    const where = key.length > 0 ? `category "${key}": ` : '';
    throw new MixtureInputError(`${source}: ${where}${issue?.message ?? 'invalid weights'}, got ${show(valueAt(inner, issue?.path ?? []))}`, source);
  }
  const total = Object.values(parsed.data).reduce((a, b) => a + b, 0);
  if (Object.keys(parsed.data).length === 0) throw new MixtureInputError(`${source}: no categories in the weights`, source);
  if (!(total > 0) || !Number.isFinite(total)) throw new MixtureInputError(`${source}: weights sum to ${total}, need a positive finite sum`, source);
  return parsed.data;
}

/** Validates a controller config (all fields optional; unknown fields rejected). */
export function parseMixtureConfig(value: unknown, source = 'config'): MixtureConfig {
  const parsed = MixtureConfig.safeParse(value ?? {});
  if (!parsed.success) throw new MixtureInputError(`${source}: ${describeIssue(parsed.error, value)}`, source);
  return parsed.data;
}

/**
 * Validates a config as written (e.g. a config file) and returns it unchanged, without
 * defaults filled in, so that {@link nextSftRatios} can still apply its SFT defaults to the
 * fields the file leaves out.
 */
export function validateMixtureConfigInput(value: unknown, source = 'config'): MixtureConfigInput {
  parseMixtureConfig(value, source);
  return (value ?? {}) as MixtureConfigInput;
}

/**
 * Validates a document index (the packer's `{category, bucket, docIndex, tokens}` entries).
 * @throws MixtureInputError naming the entry (1-based) and the first problem.
 */
export function validateDocumentIndex(values: readonly unknown[], source = 'index'): IndexedDocument[] {
  return values.map((value, i) => {
    const parsed = IndexedDocument.safeParse(value);
    if (parsed.success) return parsed.data;
    throw new MixtureInputError(`${source}:entry ${i + 1}: ${describeIssue(parsed.error, value)}`, source, i + 1, categoryOf(value));
  });
}
