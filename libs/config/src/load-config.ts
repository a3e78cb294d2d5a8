import { z } from 'zod';

/** A configuration value that failed validation; the message names the variable. */
export class ConfigError extends Error {
  constructor(readonly variable: string, reason: string, received: string | undefined) {
    super(
      `invalid configuration: ${variable}: ${reason}` +
        (received === undefined ? ' (not set)' : ` (got ${JSON.stringify(received)})`),
    );
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once at start-up. Schemas are keyed by the environment
 * variable's own name, so the first failing issue names the variable a person must fix.
 */
export function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.output<S> {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
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
