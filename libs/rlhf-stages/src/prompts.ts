/**
 * The RLHF stages' prompts: one per JSONL line, either `{prompt, subdomain, reference?, id?}` or a
 * chat conversation `{messages, category, id?}` (the SFT layout: the prompt is the last user turn,
 * the reference the assistant reply after it, the subdomain the category). A line without a
 * subdomain, with an empty prompt, or that is not JSON is a reject with its line number: it never
 * takes part with a made-up subdomain.
 */
import { readFile } from 'node:fs/promises';

export interface RlhfPrompt {
  id: string;
  prompt: string;
  subdomain: string;
  /** A reference answer (the sample's assistant reply), for the reference judge. */
  reference?: string;
}

export interface PromptReject {
  line: number;
  reason: string;
}

export interface ReadPrompts {
  prompts: RlhfPrompt[];
  rejects: PromptReject[];
  lines: number;
  /** Lines skipped because their subdomain does not start with `subdomainPrefix`. */
  skipped: number;
}

type Message = { role?: unknown; content?: unknown };

function fromLine(value: unknown, line: number): RlhfPrompt | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const o = value as Record<string, unknown>;
  const id = typeof o.id === 'string' && o.id.length > 0 ? o.id : `line-${line}`;
  if (Array.isArray(o.messages)) {
    const messages = o.messages as Message[];
    const subdomain = typeof o.category === 'string' ? o.category : typeof o.subdomain === 'string' ? o.subdomain : '';
    if (subdomain.trim() === '') return 'no subdomain (category)';
    let lastUser = -1;
    messages.forEach((m, i) => {
      if (m?.role === 'user') lastUser = i;
    });
    if (lastUser < 0) return 'messages: no user turn';
    const prompt = messages[lastUser].content;
    if (typeof prompt !== 'string' || prompt.trim() === '') return 'messages: the last user turn is empty';
    const reply = messages[lastUser + 1];
    const reference = reply?.role === 'assistant' && typeof reply.content === 'string' ? reply.content : undefined;
    return { id, prompt, subdomain, ...(reference ? { reference } : {}) };
  }
  if (typeof o.prompt !== 'string' || o.prompt.trim() === '') return 'prompt: missing or empty';
  if (typeof o.subdomain !== 'string' || o.subdomain.trim() === '') return 'subdomain: missing or empty';
  if (o.reference !== undefined && typeof o.reference !== 'string') return 'reference: not a string';
  return { id, prompt: o.prompt, subdomain: o.subdomain, ...(typeof o.reference === 'string' ? { reference: o.reference } : {}) };
}

/** Reads a prompt file; `subdomainPrefix` (e.g. `finance.`) keeps only those subdomains. */
export async function readRlhfPrompts(path: string, options: { subdomainPrefix?: string } = {}): Promise<ReadPrompts> {
  const text = await readFile(path, 'utf8');
  const prompts: RlhfPrompt[] = [];
  const rejects: PromptReject[] = [];
  let lines = 0;
  let skipped = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    lines += 1;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      rejects.push({ line: i + 1, reason: `not valid JSON (${error instanceof Error ? error.message : String(error)})` });
      return;
    }
    const parsed = fromLine(value, i + 1);
    if (typeof parsed === 'string') rejects.push({ line: i + 1, reason: parsed });
    else if (options.subdomainPrefix && !parsed.subdomain.startsWith(options.subdomainPrefix)) skipped += 1;
    else prompts.push(parsed);
  });
  return { prompts, rejects, lines, skipped };
}

export function promptsJsonl(prompts: readonly RlhfPrompt[]): string {
  return prompts.map((p) => JSON.stringify(p)).join('\n') + (prompts.length > 0 ? '\n' : '');
}
