/**
 * The stage's input prompts: JSONL `{id?, prompt, set?, category?, reference?}` per line.
 *
 * - `id` defaults to `p-` and 12 hex digits of the prompt's SHA-256, so the same prompt keeps its
 *   id between runs (human labels are keyed by it); two lines with the same id are an error.
 * - `set` (finance | general) defaults to the set of `category` when it names one of the seed's
 *   subcategories, else to the default set; a category of the other set is an error.
 * - `category` is kept as the subcategory id when it names one (id, Chinese name or English
 *   label), as given otherwise, `uncategorized` when absent.
 * - `reference`: a reference answer (a number, or text) for the verifiable labeller.
 * Unknown fields are ignored.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PreferenceSet, resolveSubcategory } from '@xyp/contracts';
import { fieldOf, inputError } from './errors';
import { parseJsonl } from './jsonl';

export const PromptLine = z.object({
  id: z.union([z.string().trim().min(1, 'must not be empty'), z.number().int().transform(String)]).optional(),
  prompt: z.string().refine((p) => p.trim() !== '', 'must not be empty'),
  set: PreferenceSet.optional(),
  category: z.string().trim().min(1, 'must not be empty').optional(),
  reference: z.union([z.string().refine((r) => r.trim() !== '', 'must not be empty'), z.number().finite()]).optional(),
});

/** One prompt as the stage works on it. */
export interface PromptSample {
  id: string;
  prompt: string;
  set: PreferenceSet;
  category: string;
  reference?: string | number;
  /** Where it was read: file and 1-based line. */
  source: { file: string; line: number };
}

export function promptIdOf(prompt: string): string {
  return `p-${createHash('sha256').update(prompt).digest('hex').slice(0, 12)}`;
}

export function parsePrompts(text: string, options: { file?: string; defaultSet?: PreferenceSet } = {}): PromptSample[] {
  const file = options.file ?? 'prompts.jsonl';
  const seen = new Map<string, number>();
  const prompts: PromptSample[] = [];
  for (const { line, value } of parseJsonl(text, file)) {
    const parsed = PromptLine.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw inputError(file, line, fieldOf(issue.path), issue.message);
    }
    const p = parsed.data;
    const sub = p.category ? resolveSubcategory(p.category) : undefined;
    if (p.set && sub && sub.set !== p.set) throw inputError(file, line, 'category', `${p.category} is a ${sub.set} subcategory, but set is ${p.set}`);
    const id = p.id ?? promptIdOf(p.prompt);
    const earlier = seen.get(id);
    if (earlier !== undefined) throw inputError(file, line, 'id', `prompt id ${id} is already used on line ${earlier}${p.id ? '' : ' (the same prompt text)'}`);
    seen.set(id, line);
    prompts.push({
      id,
      prompt: p.prompt,
      set: p.set ?? sub?.set ?? options.defaultSet ?? 'general',
      category: sub?.id ?? p.category ?? 'uncategorized',
      ...(p.reference !== undefined ? { reference: p.reference } : {}),
      source: { file, line },
    });
  }
  if (prompts.length === 0) throw inputError(file, undefined, undefined, 'no prompts');
  return prompts;
}
