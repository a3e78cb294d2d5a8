import { inputError } from './errors';

/** One non-empty line of a JSONL file, parsed, with its 1-based line number. */
export interface JsonlLine {
  line: number;
  value: unknown;
}

/** The lines of a JSONL text (blank lines skipped); a line that is not JSON throws naming the file and line. */
export function parseJsonl(text: string, file: string): JsonlLine[] {
  const out: JsonlLine[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw inputError(file, i + 1, undefined, `not JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw inputError(file, i + 1, undefined, 'not a JSON object');
    out.push({ line: i + 1, value });
  }
  return out;
}

/** Records as JSONL, one per line, with a final newline (empty text for none). */
export function toJsonl(records: readonly unknown[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + (records.length > 0 ? '\n' : '');
}
