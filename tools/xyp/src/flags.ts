import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** Command-line values checked once, each error naming the flag and the value. */

export function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flag} must be a positive integer, got ${value}`);
  return n;
}

export function positiveNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${flag} must be a positive number, got ${value}`);
  return n;
}

/** A share in [0, 1). */
export function fraction(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n < 1)) throw new Error(`--${flag} must be a number in [0, 1), got ${value}`);
  return n;
}

/** An integer of at least `min`. */
export function intAtLeast(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) throw new Error(`--${flag} must be an integer ≥ ${min}, got ${value}`);
  return n;
}

/** The absolute path of a file that must exist. */
export function existingFile(flag: string, path: string): string {
  const full = resolve(path);
  if (!existsSync(full)) throw new Error(`--${flag}: file not found: ${path}`);
  return full;
}

/** The JSON a file holds; a missing file or a body that is not JSON is named with the flag. */
export function jsonFile(flag: string, path: string): unknown {
  const full = existingFile(flag, path);
  try {
    return JSON.parse(readFileSync(full, 'utf8')) as unknown;
  } catch (error) {
    throw new Error(`--${flag} ${path}: not valid JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
}

/** `jsonFile` that must be a JSON object (weights, ratios, a controller config). */
export function jsonObjectFile(flag: string, path: string): Record<string, unknown> {
  const value = jsonFile(flag, path);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`--${flag} ${path}: not a JSON object`);
  return value as Record<string, unknown>;
}
