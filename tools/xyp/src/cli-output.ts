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

export function exitWithError(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`xyp: ${message.split('\n')[0]}\n`);
  if (process.env.XYP_DEBUG) process.stderr.write(`${error instanceof Error ? error.stack : ''}\n`);
  process.exit(1);
}
