/**
 * Output conventions of every xyp command: results on stdout (JSON with --json),
 * progress on stderr, one clear line and a non-zero exit on failure.
 */
export function printResult(value: unknown, json: boolean, human: (value: never) => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human(value as never)}\n`);
}

export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A failure already told on stderr, line by line, as it happened: exit without saying it again. */
export class ReportedError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'ReportedError';
  }
}

export function exitWithError(error: unknown): never {
  if (error instanceof ReportedError) process.exit(error.exitCode);
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`xyp: ${message.split('\n')[0]}\n`);
  if (process.env.XYP_DEBUG) process.stderr.write(`${error instanceof Error ? error.stack : ''}\n`);
  process.exit(1);
}
