/**
 * Bad input of the pairs stage (a prompt line, a human label line, the config): the message names
 * the file, the line and the field, so a person can fix it; a stage worker fails without retrying.
 */
export class PairsInputError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'PairsInputError';
  }
}

/** `file line N: field "x": message`, or what of it is known. */
export function inputError(file: string, line: number | undefined, field: string | undefined, message: string): PairsInputError {
  const where = [file, line !== undefined ? `line ${line}` : undefined].filter(Boolean).join(' ');
  const what = field ? `field "${field}": ${message}` : message;
  return new PairsInputError(`${where}: ${what}`, file, line, field);
}

/** A zod issue path as a dotted field name (`sources.1.baseUrl`). */
export function fieldOf(path: readonly PropertyKey[]): string | undefined {
  return path.length === 0 ? undefined : path.map(String).join('.');
}
