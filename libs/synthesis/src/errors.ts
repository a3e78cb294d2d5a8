import type { z } from 'zod';

/**
 * Bad input or config to a synthesis algorithm. The message is one line that starts with the
 * field (`config.minSupport`, `outcomes[3].taskId`, …) and says what was wrong and what was given.
 */
export class SynthesisInputError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'SynthesisInputError';
  }
}

/** A value for an error message: numbers as written (NaN, Infinity), the rest as short JSON. */
export function show(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** `schema.parse(value)`, throwing a `SynthesisInputError` whose message names `prefix.field`. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [prefix, ...(issue?.path ?? []).map(String)].filter((p) => p.length > 0).join('.');
  if (!issue) throw new SynthesisInputError(`${field}: invalid value`, field);
  if (issue.code === 'unrecognized_keys' || issue.code === 'custom') throw new SynthesisInputError(`${field}: ${issue.message}`, field);
  throw new SynthesisInputError(`${field}: ${issue.message}, got ${show(valueAt(value, issue.path))}`, field);
}
