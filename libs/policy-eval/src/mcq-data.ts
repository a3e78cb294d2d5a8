/**
 * Multiple-choice benchmark files: FinanceIQ and CMMLU CSV (`,Question,A,B,C,D,Answer`, an unnamed
 * index column first), C-Eval CSV (`id,question,A,B,C,D,answer[,explanation]`), and JSONL with the
 * same fields (`question`, `A`..`D`, `answer`, optional `subject`, `id`). Header names match
 * case-insensitively. A malformed record becomes a reject `{file, line, reason}` and is skipped;
 * every well-formed one is a question.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { parseCsv } from './csv';

export const OPTION_LETTERS = ['A', 'B', 'C', 'D'] as const;
export type OptionLetter = (typeof OPTION_LETTERS)[number];

export interface McqQuestion {
  subject: string;
  /** The file's id or index column, else `<file>:<line>`. */
  id: string;
  question: string;
  /** Option texts in letter order (A, B, C, D). */
  options: string[];
  answer: OptionLetter;
  file: string;
  /** Physical line where the record starts. */
  line: number;
}

export interface DataReject {
  file: string;
  line: number;
  reason: string;
}

export type McqSplit = 'test' | 'val' | 'dev';

export interface McqFile {
  file: string;
  split: McqSplit;
  format: 'csv' | 'jsonl';
  questions: number;
  rejects: number;
}

export interface McqData {
  /** The scored questions (the `test` split, or `val` where asked or where there is no test/). */
  questions: McqQuestion[];
  /** Few-shot exemplars (`dev/`), in file order. */
  dev: McqQuestion[];
  rejects: DataReject[];
  files: McqFile[];
  /** Which folder the scored questions came from (`test` for a file or a flat directory). */
  split: McqSplit;
}

/** Subject of a file: its name without `.csv`/`.jsonl` and without a trailing `_test`, `_val` or `_dev`. */
export function subjectOfFile(file: string): string {
  return basename(file)
    .replace(/\.(csv|jsonl|json)$/i, '')
    .replace(/_(test|val|dev)$/i, '');
}

function formatOf(file: string): 'csv' | 'jsonl' | undefined {
  if (/\.csv$/i.test(file)) return 'csv';
  if (/\.jsonl?$/i.test(file)) return 'jsonl';
  return undefined;
}

/** One question from its field values, or the reason it is malformed. */
function toQuestion(values: Record<string, string | undefined>, at: { file: string; line: number; subject: string }): McqQuestion | string {
  const question = (values.question ?? '').trim();
  if (question === '') return 'empty question';
  const options: string[] = [];
  for (const letter of OPTION_LETTERS) {
    const text = (values[letter.toLowerCase()] ?? '').trim();
    if (text === '') return `empty option ${letter}`;
    options.push(text);
  }
  const answer = (values.answer ?? '').trim().toUpperCase();
  if (!(OPTION_LETTERS as readonly string[]).includes(answer)) return `answer ${JSON.stringify(values.answer ?? '')} is not one of A, B, C, D`;
  const id = (values.id ?? '').trim();
  return { subject: at.subject, id: id === '' ? `${at.file}:${at.line}` : id, question, options, answer: answer as OptionLetter, file: at.file, line: at.line };
}

const REQUIRED = ['question', 'a', 'b', 'c', 'd', 'answer'];

/** Questions and rejects of one CSV text (`file` names it in ids and rejects). */
export function parseMcqCsv(text: string, file: string, subject = subjectOfFile(file)): { questions: McqQuestion[]; rejects: DataReject[] } {
  const { records, errors } = parseCsv(text);
  const rejects: DataReject[] = errors.map((e) => ({ file, line: e.line, reason: e.reason }));
  const questions: McqQuestion[] = [];
  const [header, ...rows] = records;
  if (!header) return { questions, rejects };
  const names = header.fields.map((name) => name.trim().toLowerCase());
  const missing = REQUIRED.filter((name) => !names.includes(name));
  if (missing.length > 0) {
    rejects.push({ file, line: header.line, reason: `header lacks ${missing.join(', ')} (expected ",Question,A,B,C,D,Answer" or "id,question,A,B,C,D,answer")` });
    return { questions, rejects };
  }
  // FinanceIQ/CMMLU: the unnamed first column is the row index.
  const idColumn = names.indexOf('id') >= 0 ? names.indexOf('id') : names[0] === '' ? 0 : -1;
  for (const row of rows) {
    if (row.fields.length !== names.length) {
      rejects.push({ file, line: row.line, reason: `${row.fields.length} fields, the header has ${names.length}` });
      continue;
    }
    const values: Record<string, string> = {};
    names.forEach((name, k) => {
      if (name !== '' && !(name in values)) values[name] = row.fields[k];
    });
    values.id = idColumn >= 0 ? row.fields[idColumn] : '';
    const q = toQuestion(values, { file, line: row.line, subject });
    if (typeof q === 'string') rejects.push({ file, line: row.line, reason: q });
    else questions.push(q);
  }
  return { questions, rejects };
}

/** Questions and rejects of one JSONL text; a line's `subject` wins over the file's. */
export function parseMcqJsonl(text: string, file: string, subject = subjectOfFile(file)): { questions: McqQuestion[]; rejects: DataReject[] } {
  const questions: McqQuestion[] = [];
  const rejects: DataReject[] = [];
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split(/\r\n|\n|\r/);
  lines.forEach((raw, k) => {
    const line = k + 1;
    if (raw.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      rejects.push({ file, line, reason: `not JSON: ${(error as Error).message}` });
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      rejects.push({ file, line, reason: 'not a JSON object' });
      return;
    }
    const values: Record<string, string | undefined> = {};
    for (const [key, value] of Object.entries(parsed)) {
      const name = key.toLowerCase();
      if (name in values) continue;
      if (typeof value === 'string') values[name] = value;
      else if (typeof value === 'number' && Number.isFinite(value)) values[name] = String(value);
      else if (REQUIRED.includes(name) || name === 'subject') {
        rejects.push({ file, line, reason: `field ${key} is not a string` });
        return;
      }
    }
    const own = values.subject?.trim();
    const q = toQuestion(values, { file, line, subject: own ? own : subject });
    if (typeof q === 'string') rejects.push({ file, line, reason: q });
    else questions.push(q);
  });
  return { questions, rejects };
}

function readFileQuestions(path: string, shown: string, split: McqSplit, files: McqFile[]): { questions: McqQuestion[]; rejects: DataReject[] } {
  const format = formatOf(path);
  if (!format) throw new Error(`${shown}: not a .csv or .jsonl file`);
  const text = readFileSync(path, 'utf8');
  const parsed = format === 'csv' ? parseMcqCsv(text, shown) : parseMcqJsonl(text, shown);
  files.push({ file: shown, split, format, questions: parsed.questions.length, rejects: parsed.rejects.length });
  return parsed;
}

function readFolder(dir: string, root: string, split: McqSplit, files: McqFile[]): { questions: McqQuestion[]; rejects: DataReject[] } {
  const questions: McqQuestion[] = [];
  const rejects: DataReject[] = [];
  const names = readdirSync(dir)
    .filter((name) => formatOf(name) && statSync(join(dir, name)).isFile())
    .sort();
  for (const name of names) {
    const path = join(dir, name);
    const parsed = readFileQuestions(path, relative(root, path) || name, split, files);
    questions.push(...parsed.questions);
    rejects.push(...parsed.rejects);
  }
  return { questions, rejects };
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Reads a benchmark: a file (every question is scored), a directory of files (one subject per file),
 * or a directory with `test/` and optional `dev/` and `val/` folders (C-Eval/CMMLU/FinanceIQ
 * layout: `split` is scored — default `test`, or `val` when there is no `test/` — and `dev/` gives
 * the few-shot exemplars). File names in ids and rejects are relative to `path`'s directory.
 */
export function readMcqData(path: string, options: { split?: 'test' | 'val' } = {}): McqData {
  const files: McqFile[] = [];
  if (!isDir(path)) {
    const parsed = readFileQuestions(path, basename(path), 'test', files);
    return { questions: parsed.questions, dev: [], rejects: parsed.rejects, files, split: 'test' };
  }
  const hasTest = isDir(join(path, 'test'));
  const hasVal = isDir(join(path, 'val'));
  const dev = isDir(join(path, 'dev')) ? readFolder(join(path, 'dev'), path, 'dev', files) : { questions: [], rejects: [] };
  let split: McqSplit = options.split ?? (hasTest ? 'test' : hasVal ? 'val' : 'test');
  let scored: { questions: McqQuestion[]; rejects: DataReject[] };
  if (isDir(join(path, split))) scored = readFolder(join(path, split), path, split, files);
  else if (options.split) throw new Error(`${path}: no ${options.split}/ folder`);
  else {
    split = 'test';
    scored = readFolder(path, path, 'test', files);
  }
  if (files.filter((f) => f.split !== 'dev').length === 0) throw new Error(`${path}: no .csv or .jsonl files`);
  return { questions: scored.questions, dev: dev.questions, rejects: [...scored.rejects, ...dev.rejects], files, split };
}
