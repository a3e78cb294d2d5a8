import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * Variables that hold secrets. Each may instead be read from a mounted file named by
 * `<NAME>_FILE` (a Kubernetes secret volume, say; one trailing newline is dropped), and a
 * bad value is never echoed in an error, only its length.
 */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  'XYP_BOARD_PASSWORD',
  'XYP_S3_ACCESS_KEY',
  'XYP_S3_SECRET_KEY',
  'XYP_GRPC_TOKENS',
  'XYP_GRPC_TOKEN',
  'XYP_METRICS_TOKEN',
]);

/** A configuration value that failed validation; the message names the variable. */
export class ConfigError extends Error {
  constructor(readonly variable: string, reason: string, received: string | undefined) {
    super(`invalid configuration: ${variable}: ${reason}${describeReceived(variable, received)}`);
    this.name = 'ConfigError';
  }
}

/** What an error shows of the value: nothing of a secret, no password of a URL. */
function describeReceived(variable: string, received: string | undefined): string {
  if (received === undefined) return ' (not set)';
  if (SECRET_VARIABLES.has(variable)) return ` (got a value of ${received.length} characters, not shown)`;
  return ` (got ${JSON.stringify(withoutUrlPassword(received))})`;
}

/** `redis://:secret@host` shown as `redis://:***@host`; anything else as it is. */
function withoutUrlPassword(value: string): string {
  try {
    const url = new URL(value);
    return url.password ? value.replace(`:${url.password}@`, ':***@') : value;
  } catch {
    return value;
  }
}

/**
 * The value of a secret variable from `<NAME>_FILE` when that is set (one trailing newline
 * dropped), else from `<NAME>`; both set, or an unreadable file, is an error naming the variable.
 */
function secretValue(variable: string, env: Record<string, string | undefined>): string | undefined {
  const direct = env[variable] === '' ? undefined : env[variable];
  const fileVariable = `${variable}_FILE`;
  const file = env[fileVariable] === '' ? undefined : env[fileVariable];
  if (file === undefined) return direct;
  if (direct !== undefined) throw new ConfigError(fileVariable, `set either ${variable} or ${fileVariable}, not both`, file);
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError(fileVariable, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`, file);
  }
}

/**
 * Parses the environment once at start-up. Schemas are keyed by the environment
 * variable's own name, so the first failing issue names the variable a person must fix.
 * A secret variable (`SECRET_VARIABLES`) may come from its `<NAME>_FILE`.
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.output<S> {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) {
    // A schema with its own `<NAME>_FILE` (XYP_GRPC_TOKENS_FILE: a list, re-read) reads that file itself.
    const fromFile = SECRET_VARIABLES.has(key) && !(`${key}_FILE` in schema.shape);
    const value = fromFile ? secretValue(key, env) : env[key];
    picked[key] = value === '' ? undefined : value;
  }
  const parsed = schema.safeParse(picked);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const variable = String(issue.path[0] ?? 'environment');
  throw new ConfigError(variable, issue.message, picked[variable]);
}

/** Integer from an environment string, within bounds. */
export const envInt = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

export const envPort = () => envInt(1, 65535);

export const envBool = () =>
  z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((v) => v === 'true' || v === '1');

export const envUrl = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    },
    { message: `must be a ${protocols.join(' or ')} URL` },
  );
