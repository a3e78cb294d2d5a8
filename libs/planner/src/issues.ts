/** One problem with a run spec, at a path a person can find in the spec (`stages[2].params.window_tokens`). */
export interface SpecIssue {
  path: string;
  message: string;
}

/** A run spec that cannot run: every problem found, each naming its field. */
export class RunSpecError extends Error {
  constructor(readonly issues: readonly SpecIssue[]) {
    super(issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; '));
    this.name = 'RunSpecError';
  }
}

/** A run that cannot go on as planned (a dependency committed without the artifact a binding names). */
export class PlanStepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanStepError';
  }
}

/** `['stages', 2, 'params', 'window_tokens']` → `stages[2].params.window_tokens`. */
export function formatPath(parts: readonly PropertyKey[]): string {
  let path = '';
  for (const part of parts) {
    if (typeof part === 'number') path += `[${part}]`;
    else path += path ? `.${String(part)}` : String(part);
  }
  return path;
}

/** Joins a base path and a sub-path (`stages[1]` + `params.seed`). */
export function joinPath(base: string, ...rest: readonly PropertyKey[]): string {
  const tail = formatPath(rest);
  if (!base) return tail;
  if (!tail) return base;
  return tail.startsWith('[') ? `${base}${tail}` : `${base}.${tail}`;
}
