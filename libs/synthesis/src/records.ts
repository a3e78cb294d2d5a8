/**
 * What the synthesis stages write: SFT items in chat format, with provenance, and the accounting
 * that every input ended somewhere.
 *
 * One item, one JSONL line (the `{messages, category}` form the SFT stage reads, plus its id and
 * provenance):
 *
 *   {"id": …, "messages": [{"role": "user", "content": …}, {"role": "assistant", "content": …}],
 *    "category": "funds.knowledge",
 *    "provenance": {"generator": "selfqa", "models": [...], "promptVersion": "selfqa-instructions@1",
 *                   "sourceId": …, "parentId"?: …, "candidates"?: [...], "fusionPromptVersion"?: …, …}}
 *
 * Accounting: every input (a document's question, a pool task, a query) ends as exactly one of
 * `kept`, `dropped` (a filter's reason) or `failed` (a call or parse failure);
 * `summarizeAccounting` counts them per category and per reason and throws `AccountingError`
 * naming the inputs with no outcome, with two, or outcomes for ids that were never input.
 */
import { ChatTurn } from '@xyp/contracts';
import { z } from 'zod';
import { parseWith } from './errors';
import type { CandidateDecision } from './ensemble';
import { EVOL_OPERATIONS, PROMPT_VERSION_PATTERN } from './prompts';
import { SynthesisMethod, categoryById } from './taxonomy';

const PromptVersion = z.string().regex(PROMPT_VERSION_PATTERN, { error: 'a prompt version is <id>@<n>, e.g. fusion@1' });

/** One ensemble candidate as provenance keeps it (a non-finite score is written as null). */
export const SftCandidate = z
  .object({ model: z.string().min(1), score: z.number().nullable(), kept: z.boolean(), reason: z.string().min(1).optional() })
  .strict();
export type SftCandidate = z.infer<typeof SftCandidate>;

export const SftProvenance = z
  .looseObject({
    /** The synthesis method that made the item. */
    generator: SynthesisMethod,
    /** Every model whose text is in the item (instruction writer, answerer, fusion model). */
    models: z.array(z.string().min(1)).min(1),
    /**
     * The method's generating prompt: selfqa-instructions, evol-in-depth / evol-in-breadth,
     * analysis-fewshot, or fusion for the ensemble.
     */
    promptVersion: PromptVersion,
    /** Every other versioned prompt that took part (selfqa-answer, evol-equality). */
    promptVersions: z.array(PromptVersion).optional(),
    /** The input it came from: a document, a seed instruction, a topic, a query. */
    sourceId: z.string().min(1),
    /** The item it was derived from (Evol-Instruct's parent). */
    parentId: z.string().min(1).optional(),
    /** Ensemble: every candidate with its score and decision. */
    candidates: z.array(SftCandidate).min(1).optional(),
    /** Ensemble: the fusion prompt's version. */
    fusionPromptVersion: PromptVersion.optional(),
    /** Evol-Instruct: generation depth and the operation that made it. */
    depth: z.number().int().nonnegative().optional(),
    operation: z.enum(EVOL_OPERATIONS).optional(),
    /** Expert-seeded: the exemplars shown. */
    exemplarIds: z.array(z.string().min(1)).optional(),
    /** SelfQA: the answer's support score. */
    supportScore: z.number().min(0).max(1).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.generator !== 'ensemble') return;
    if (!p.candidates) ctx.addIssue({ code: 'custom', path: ['candidates'], message: 'an ensemble item records its candidates' });
    else if (!p.candidates.some((c) => c.kept)) ctx.addIssue({ code: 'custom', path: ['candidates'], message: 'an ensemble item has at least one kept candidate' });
    if (!p.fusionPromptVersion) ctx.addIssue({ code: 'custom', path: ['fusionPromptVersion'], message: 'an ensemble item records its fusion prompt version' });
  });
export type SftProvenance = z.infer<typeof SftProvenance>;

export const SftItem = z
  .object({
    id: z.string().min(1),
    messages: z
      .array(ChatTurn)
      .min(2)
      .superRefine((messages, ctx) => {
        if (messages[messages.length - 1]?.role !== 'assistant') ctx.addIssue({ code: 'custom', message: 'the last message is the assistant turn' });
        if (!messages.some((m) => m.role === 'user')) ctx.addIssue({ code: 'custom', message: 'there is a user turn' });
        messages.forEach((m, i) => {
          if (m.role === 'system' && i > 0) ctx.addIssue({ code: 'custom', path: [i, 'role'], message: 'a system turn comes first' });
          if (m.content.trim().length === 0) ctx.addIssue({ code: 'custom', path: [i, 'content'], message: 'a turn is not blank' });
        });
      }),
    category: z.string().refine((id) => categoryById(id) !== undefined, { error: 'a taxonomy category id (see TAXONOMY)' }),
    provenance: SftProvenance,
  })
  .strict();
export type SftItem = z.infer<typeof SftItem>;

/** An item validated against `SftItem`, throwing a `SynthesisInputError` naming the field. */
export function parseSftItem(value: unknown): SftItem {
  return parseWith(SftItem, value, 'item');
}

/** `[user, assistant]` (with a leading system turn when given). */
export function chatMessages(user: string, assistant: string, system?: string): ChatTurn[] {
  return [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user', content: user }, { role: 'assistant', content: assistant }];
}

/** Ensemble decisions as provenance records them (NaN and ±∞ scores as null). */
export function provenanceCandidates(decisions: readonly CandidateDecision[]): SftCandidate[] {
  return decisions.map((d) => ({ model: d.model, score: Number.isFinite(d.score) ? d.score : null, kept: d.kept, ...(d.reason ? { reason: d.reason } : {}) }));
}

// ---------------------------------------------------------------- accounting

export type InputOutcome =
  | { id: string; category: string; status: 'kept' }
  | { id: string; category: string; status: 'dropped'; reason: string }
  | { id: string; category: string; status: 'failed'; reason: string };

export interface CategoryCounts {
  inputs: number;
  kept: number;
  dropped: number;
  failed: number;
}

export interface AccountingSummary {
  inputs: number;
  kept: number;
  dropped: number;
  failed: number;
  byCategory: Record<string, CategoryCounts>;
  /** Drops per reason. */
  droppedByReason: Record<string, number>;
  /** Failures per reason. */
  failedByReason: Record<string, number>;
}

/** Some input has no outcome, or two, or an outcome names an id that was never input. */
export class AccountingError extends Error {
  constructor(
    readonly missing: readonly string[],
    readonly duplicated: readonly string[],
    readonly unknown: readonly string[],
  ) {
    const list = (ids: readonly string[]) => (ids.length > 10 ? `${ids.slice(0, 10).join(', ')} and ${ids.length - 10} more` : ids.join(', '));
    const parts = [
      missing.length > 0 ? `no outcome for ${list(missing)}` : '',
      duplicated.length > 0 ? `more than one outcome (or input) for ${list(duplicated)}` : '',
      unknown.length > 0 ? `outcomes for ids never input: ${list(unknown)}` : '',
    ].filter((p) => p.length > 0);
    super(`accounting: ${parts.join('; ')}`);
    this.name = 'AccountingError';
  }
}

/**
 * Counts per category and per reason, after checking that every input id has exactly one
 * outcome (else `AccountingError`).
 */
export function summarizeAccounting(inputIds: readonly string[], outcomes: readonly InputOutcome[]): AccountingSummary {
  const inputs = new Set<string>();
  const duplicated = new Set<string>();
  for (const id of inputIds) {
    if (inputs.has(id)) duplicated.add(id);
    inputs.add(id);
  }
  const seen = new Set<string>();
  const unknown: string[] = [];
  for (const o of outcomes) {
    if (!inputs.has(o.id)) unknown.push(o.id);
    else if (seen.has(o.id)) duplicated.add(o.id);
    seen.add(o.id);
  }
  const missing = [...inputs].filter((id) => !seen.has(id));
  if (missing.length > 0 || duplicated.size > 0 || unknown.length > 0) throw new AccountingError(missing, [...duplicated], unknown);

  const summary: AccountingSummary = { inputs: inputs.size, kept: 0, dropped: 0, failed: 0, byCategory: {}, droppedByReason: {}, failedByReason: {} };
  for (const o of outcomes) {
    const counts = (summary.byCategory[o.category] ??= { inputs: 0, kept: 0, dropped: 0, failed: 0 });
    counts.inputs++;
    counts[o.status]++;
    summary[o.status]++;
    if (o.status === 'dropped') summary.droppedByReason[o.reason] = (summary.droppedByReason[o.reason] ?? 0) + 1;
    if (o.status === 'failed') summary.failedByReason[o.reason] = (summary.failedByReason[o.reason] ?? 0) + 1;
  }
  return summary;
}
