import type { z } from 'zod';

/** Turns zod issues into one line: `inputKey: expected string; extra: unrecognized key`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`).join('; ');
}
