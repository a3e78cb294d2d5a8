/**
 * JSONL inputs of the local engine. Each reader validates every line and names the file and line
 * of the first bad one.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { PreferenceRecord } from '@xyp/contracts';
import type { ByteTokenizer, SftExample } from '@xyp/engine';
import { tokenizeRecord, type PreferencePair } from '@xyp/ufrm';

/** A corpus line, as the corpus stage writes them (`data/sample/corpus.jsonl`). */
export const CorpusLine = z.object({ id: z.string().min(1), text: z.string(), category: z.string().min(1) });
export type CorpusLine = z.infer<typeof CorpusLine>;

const Message = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });
/** An SFT line: a category (for the per-category loss log) and a chat. */
export const SftLine = z.object({ category: z.string().min(1).default('general'), messages: z.array(Message).min(1) });
/** A preference line, with OpenRLHF's default keys (`--prompt_key prompt --chosen_key chosen --rejected_key rejected`). */
export const PreferenceLine = z.object({ prompt: z.string(), chosen: z.string().min(1), rejected: z.string().min(1), margin: z.number().optional() });
/** What the reward-model job reads: a normalized `PreferenceRecord` (what `@xyp/preference-data` writes) or a plain OpenRLHF line. */
const TrainingPreferenceLine = z.union([PreferenceRecord, PreferenceLine]);
/** A PPO prompt line (`--input_key prompt`). */
export const PromptLine = z.object({ prompt: z.string().min(1) });

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** Parses every non-blank line of a JSONL file with `schema`. */
export async function readJsonl<S extends z.ZodType>(file: string, schema: S): Promise<z.output<S>[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : String(error);
    throw new Error(`cannot read ${file}: ${code}`, { cause: error });
  }
  const out: z.output<S>[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new Error(`${file}:${i + 1}: ${describeIssue(parsed.error)}`);
    out.push(parsed.data);
  }
  if (out.length === 0) throw new Error(`${file}: no records`);
  return out;
}

/** Corpus documents as byte tokens, each ended by `<eot>` so packed rows mark document ends. */
export async function readCorpusDocuments(file: string, tokenizer: ByteTokenizer): Promise<number[][]> {
  const lines = await readJsonl(file, CorpusLine);
  return lines.map((l) => [...tokenizer.encode(l.text), tokenizer.eosId]);
}

export async function readSftExamples(file: string): Promise<SftExample[]> {
  return readJsonl(file, SftLine);
}

/** A pair as the reward-model job trains on it, with the record's category and set when it has them. */
export interface LabelledPreferencePair extends PreferencePair {
  category: string;
  set: string;
}

/**
 * Preference pairs: the prompt conversation in the chat template with a generation prompt (a plain
 * line's prompt is one user turn), each response ended by `<eot>` — the form `rewardSequence` of
 * `@xyp/ufrm` scores.
 */
export function tokenizePreference(line: z.output<typeof TrainingPreferenceLine>, tokenizer: ByteTokenizer): LabelledPreferencePair {
  if ('id' in line) return { ...tokenizeRecord(tokenizer, line), category: line.category, set: line.set };
  const record = {
    prompt: [{ role: 'user' as const, content: line.prompt }],
    chosen: [{ role: 'assistant' as const, content: line.chosen }],
    rejected: [{ role: 'assistant' as const, content: line.rejected }],
    margin: line.margin,
  };
  return { ...tokenizeRecord(tokenizer, record), category: 'uncategorized', set: 'general' };
}

/** Reads a JSONL of `PreferenceRecord` or plain `{prompt, chosen, rejected}` lines (see `tokenizePreference`). */
export async function readPreferencePairs(file: string, tokenizer: ByteTokenizer): Promise<LabelledPreferencePair[]> {
  return (await readJsonl(file, TrainingPreferenceLine)).map((line) => tokenizePreference(line, tokenizer));
}

export async function readPrompts(file: string): Promise<string[]> {
  return (await readJsonl(file, PromptLine)).map((l) => l.prompt);
}
