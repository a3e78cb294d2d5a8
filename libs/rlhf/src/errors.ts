import type { z } from 'zod';

/**
 * Bad input or config to an RLHF algorithm. The message is one line that starts with the field
 * (`config.minStd`, `ppoTiers.safety`, ...) and says what was wrong and what was given.
 */
export class RlhfInputError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'RlhfInputError';
  }
}

/** Confidence-interval filtering left no prompt; `rule` is the rule that removed the last ones. */
export class CiFilterEmptyError extends Error {
  constructor(
    message: string,
    readonly rule: 'invalid' | 'low-std' | 'mean-above' | 'mean-below' | 'mean-range' | 'not-sampled',
  ) {
    super(message);
    this.name = 'CiFilterEmptyError';
  }
}

/** A value for an error message: numbers as written (NaN, Infinity), the rest as short JSON. */
export function show(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** `schema.parse(value)`, throwing an `RlhfInputError` whose message names `prefix.field`. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [prefix, ...(issue?.path ?? []).map(String)].filter((p) => p.length > 0).join('.');
  if (!issue) throw new RlhfInputError(`${field}: invalid value`, field);
  if (issue.code === 'unrecognized_keys') throw new RlhfInputError(`${field}: ${issue.message}`, field);
  throw new RlhfInputError(`${field}: ${issue.message}, got ${show(valueAt(value, issue.path))}`, field);
}
