/**
 * Perplexity per category of a corpus (`{text, category}`: every token of the text) or of SFT chats
 * (`{messages, category}`: assistant tokens only, the chat template's train mask).
 *
 * Per category: nll = Σ −log p / Σ tokens (natural log, mean per token over the category's tokens,
 * not the mean of per-document means), ppl = exp(nll). Overall: the same over every token
 * (token-weighted).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { DataReject } from './mcq-data';
import type { EvalMessage, PolicyScorer } from './scorer';

export type PerplexityRecord = { text: string; category: string } | { messages: EvalMessage[]; category: string };

export interface PerplexityRow {
  category: string;
  documents: number;
  tokens: number;
  /** Mean negative log-likelihood per token (nats). */
  nll: number;
  ppl: number;
}

export interface PerplexityResult {
  model: string;
  categories: PerplexityRow[];
  overall: PerplexityRow;
  /** Documents scored on their last tokens only (a chat longer than the context, or a text without a rolling scorer). */
  truncated: number;
}

const DEFAULT_CATEGORY = 'uncategorized';
const ROLES = new Set(['system', 'user', 'assistant']);

/** One JSONL line as a record, or the reason it is not one. */
export function parsePerplexityLine(raw: string): PerplexityRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return `not JSON: ${(error as Error).message}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const v = value as Record<string, unknown>;
  if (v.category !== undefined && typeof v.category !== 'string') return 'category is not a string';
  const category = typeof v.category === 'string' && v.category.trim() !== '' ? v.category : DEFAULT_CATEGORY;
  if (typeof v.text === 'string') {
    if (v.text === '') return 'empty text';
    return { text: v.text, category };
  }
  if (Array.isArray(v.messages)) {
    const messages: EvalMessage[] = [];
    for (const [k, m] of v.messages.entries()) {
      if (typeof m !== 'object' || m === null) return `messages[${k}] is not an object`;
      const { role, content } = m as Record<string, unknown>;
      if (typeof role !== 'string' || !ROLES.has(role)) return `messages[${k}].role must be system, user or assistant`;
      if (typeof content !== 'string') return `messages[${k}].content is not a string`;
      messages.push({ role: role as EvalMessage['role'], content });
    }
    if (!messages.some((m) => m.role === 'assistant')) return 'no assistant message (nothing to score)';
    return { messages, category };
  }
  return 'neither text (a string) nor messages (a list)';
}

/** Records of a JSONL file; malformed lines go to rejects (physical line numbers). */
export function readPerplexityRecords(path: string): { records: PerplexityRecord[]; rejects: DataReject[]; lines: number } {
  const file = basename(path);
  const text = readFileSync(path, 'utf8');
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split(/\r\n|\n|\r/);
  const records: PerplexityRecord[] = [];
  const rejects: DataReject[] = [];
  let count = 0;
  lines.forEach((raw, k) => {
    if (raw.trim() === '') return;
    count += 1;
    const r = parsePerplexityLine(raw);
    if (typeof r === 'string') rejects.push({ file, line: k + 1, reason: r });
    else records.push(r);
  });
  return { records, rejects, lines: count };
}

function row(category: string, documents: number, tokens: number, negLogLik: number): PerplexityRow {
  const nll = tokens === 0 ? Number.NaN : negLogLik / tokens;
  return { category, documents, tokens, nll, ppl: Math.exp(nll) };
}

export async function perplexityByCategory(
  records: readonly PerplexityRecord[],
  scorer: PolicyScorer,
  options: { chunk?: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void | Promise<void> } = {},
): Promise<PerplexityResult> {
  const sums = new Map<string, { documents: number; tokens: number; nll: number }>();
  const chunk = Math.max(1, options.chunk ?? 32);
  let truncated = 0;
  for (let start = 0; start < records.length; start += chunk) {
    options.signal?.throwIfAborted();
    const part = records.slice(start, start + chunk);
    const scores: { logLikelihood: number; tokens: number }[] = new Array(part.length);
    const texts = part.map((r, i) => ({ r, i })).filter((x): x is { r: { text: string; category: string }; i: number } => 'text' in x.r);
    const chats = part.map((r, i) => ({ r, i })).filter((x): x is { r: { messages: EvalMessage[]; category: string }; i: number } => 'messages' in x.r);
    if (texts.length > 0) {
      if (scorer.logLikelihoodRolling) {
        const s = await scorer.logLikelihoodRolling(texts.map((x) => x.r.text), { signal: options.signal });
        texts.forEach((x, k) => (scores[x.i] = s[k]));
      } else {
        const s = await scorer.logLikelihood(texts.map((x) => ({ context: '', continuation: x.r.text })), { signal: options.signal });
        texts.forEach((x, k) => {
          scores[x.i] = s[k];
          if (s[k].truncated) truncated += 1;
        });
      }
    }
    if (chats.length > 0) {
      const s = await scorer.conversationLogLikelihood(chats.map((x) => x.r.messages), { signal: options.signal });
      chats.forEach((x, k) => {
        scores[x.i] = s[k];
        if (s[k].truncated) truncated += 1;
      });
    }
    part.forEach((r, i) => {
      const acc = sums.get(r.category) ?? { documents: 0, tokens: 0, nll: 0 };
      acc.documents += 1;
      acc.tokens += scores[i].tokens;
      acc.nll -= scores[i].logLikelihood;
      sums.set(r.category, acc);
    });
    await options.onProgress?.(Math.min(records.length, start + chunk), records.length);
  }
  const categories = [...sums.entries()].map(([category, s]) => row(category, s.documents, s.tokens, s.nll)).sort((a, b) => a.category.localeCompare(b.category));
  const all = [...sums.values()].reduce((a, s) => ({ documents: a.documents + s.documents, tokens: a.tokens + s.tokens, nll: a.nll + s.nll }), { documents: 0, tokens: 0, nll: 0 });
  return { model: scorer.name, categories, overall: row('overall', all.documents, all.tokens, all.nll), truncated };
}
