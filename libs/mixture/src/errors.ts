/**
 * Bad input to the mixture controller or sampler. The message is one line that names
 * where the problem is (`source:line` for report lines) and, when known, the category.
 */
export class MixtureInputError extends Error {
  constructor(
    message: string,
    readonly source?: string,
    readonly line?: number,
    readonly category?: string,
  ) {
    super(message);
    this.name = 'MixtureInputError';
  }
}
