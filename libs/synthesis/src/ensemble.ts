/**
 * Multi-model ensemble with the finance reward model (seed 二, 多模集成与金融Reward Model结合, 图1):
 * several models answer the same query, UFRM scores every answer, answers below a threshold are
 * filtered out, and one model fuses the survivors into the final answer.
 *
 * `selectSurvivors(queries, config)` decides every candidate, in this order:
 *   `invalid-score`          the score is not a finite number
 *   `empty-answer`           the answer is blank
 *   `below-threshold`        score < threshold — a score EQUAL to the threshold is kept (≥)
 *   `beyond-max-survivors`   kept so far, but not among the `maxSurvivors` best (score descending,
 *                            ties in input order)
 * The threshold is `{absolute: t}` for every category, or `{quantile: q}`: per category, the
 * type-7 quantile (linear interpolation, numpy's default: h = (n − 1)·q,
 * Q = x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋])) of every finite score of that category's candidates,
 * over all queries. A query with no survivor is `unresolved` and carries its scores; else it is
 * `resolved` with its survivors sorted by score descending (ties in input order).
 * `fusionMessages(selection)` builds the `FUSION` prompt from them, numbered 1..n in that order,
 * without the models' names.
 */
import type { ChatTurn } from '@xyp/contracts';
import { z } from 'zod';
import { SynthesisInputError, parseWith } from './errors';
import { FUSION } from './prompts';
import { quantileType7 } from '@xyp/stats';

export interface EnsembleCandidate {
  model: string;
  answer: string;
  /** The reward model's (UFRM) score of the answer. */
  score: number;
}

export interface EnsembleQuery {
  id: string;
  /** Taxonomy id: quantile thresholds are per category. */
  category: string;
  /** The user's query. */
  query: string;
  candidates: readonly EnsembleCandidate[];
}

export const EnsembleThreshold = z.union(
  [
    z.object({ absolute: z.number({ error: 'absolute must be a finite number' }) }).strict(),
    z.object({ quantile: z.number().min(0, { error: 'quantile must be in [0, 1]' }).max(1, { error: 'quantile must be in [0, 1]' }) }).strict(),
  ],
  { error: 'a threshold is {absolute: x} or {quantile: q} with q in [0, 1]' },
);
export type EnsembleThreshold = z.infer<typeof EnsembleThreshold>;

export const EnsembleConfig = z
  .object({
    threshold: EnsembleThreshold,
    /** At most this many survivors go to fusion (all when absent). */
    maxSurvivors: z.number().int().min(1).optional(),
  })
  .strict();
export type EnsembleConfig = z.infer<typeof EnsembleConfig>;

export type CandidateDropReason = 'invalid-score' | 'empty-answer' | 'below-threshold' | 'beyond-max-survivors';

export interface CandidateDecision {
  model: string;
  score: number;
  kept: boolean;
  reason?: CandidateDropReason;
}

export interface RankedCandidate extends EnsembleCandidate {
  /** Its place among the query's candidates as given. */
  index: number;
}

export type EnsembleSelection =
  | { queryId: string; category: string; query: string; threshold: number; status: 'resolved'; survivors: RankedCandidate[]; decisions: CandidateDecision[] }
  | { queryId: string; category: string; query: string; threshold: number; status: 'unresolved'; scores: number[]; decisions: CandidateDecision[] };

export interface EnsembleResult {
  selections: EnsembleSelection[];
  /** The threshold used per category. */
  thresholds: Record<string, number>;
}

/** Per category, the threshold (see the module comment). A quantile over a category without a finite score throws. */
export function ensembleThresholds(queries: readonly EnsembleQuery[], threshold: EnsembleThreshold): Record<string, number> {
  const scores = new Map<string, number[]>();
  for (const q of queries) {
    const list = scores.get(q.category) ?? [];
    for (const c of q.candidates) if (Number.isFinite(c.score)) list.push(c.score);
    scores.set(q.category, list);
  }
  const out: Record<string, number> = {};
  for (const [category, list] of scores) {
    if ('absolute' in threshold) out[category] = threshold.absolute;
    else if (list.length === 0) throw new SynthesisInputError(`threshold.quantile: category ${category} has no finite score to take a quantile of`, 'threshold.quantile');
    else out[category] = quantileType7(list, threshold.quantile);
  }
  return out;
}

/** Keep/drop decisions for every candidate of every query (module comment). Query ids must be unique. */
export function selectSurvivors(queries: readonly EnsembleQuery[], config: EnsembleConfig): EnsembleResult {
  const settings = parseWith(EnsembleConfig, config, 'ensemble');
  const seen = new Set<string>();
  for (const [i, q] of queries.entries()) {
    if (seen.has(q.id)) throw new SynthesisInputError(`queries[${i}].id: ${q.id} appears twice`, `queries[${i}].id`);
    seen.add(q.id);
  }
  const thresholds = ensembleThresholds(queries, settings.threshold);
  const selections = queries.map((q): EnsembleSelection => {
    const threshold = thresholds[q.category];
    const decisions: CandidateDecision[] = q.candidates.map((c) => {
      const drop = (reason: CandidateDropReason): CandidateDecision => ({ model: c.model, score: c.score, kept: false, reason });
      if (!Number.isFinite(c.score)) return drop('invalid-score');
      if (c.answer.trim().length === 0) return drop('empty-answer');
      if (!(c.score >= threshold)) return drop('below-threshold');
      return { model: c.model, score: c.score, kept: true };
    });
    const ranked = q.candidates
      .map((c, index): RankedCandidate => ({ ...c, index }))
      .filter((c) => decisions[c.index].kept)
      .sort((a, b) => b.score - a.score || a.index - b.index);
    const survivors = settings.maxSurvivors === undefined ? ranked : ranked.slice(0, settings.maxSurvivors);
    for (const c of ranked.slice(survivors.length)) decisions[c.index] = { model: c.model, score: c.score, kept: false, reason: 'beyond-max-survivors' };
    const base = { queryId: q.id, category: q.category, query: q.query, threshold, decisions };
    return survivors.length > 0 ? { ...base, status: 'resolved', survivors } : { ...base, status: 'unresolved', scores: q.candidates.map((c) => c.score) };
  });
  return { selections, thresholds };
}

/** The fusion prompt for a resolved selection: the query, then its survivors numbered by rank. */
export function fusionMessages(selection: EnsembleSelection): { promptVersion: string; messages: ChatTurn[] } {
  if (selection.status !== 'resolved') throw new SynthesisInputError(`selection ${selection.queryId}: unresolved (no candidate reached ${selection.threshold}); nothing to fuse`, 'selection');
  return { promptVersion: FUSION.version, messages: FUSION.render({ query: selection.query, candidates: selection.survivors.map((s) => s.answer) }) };
}
