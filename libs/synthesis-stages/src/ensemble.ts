/**
 * The multi-model ensemble over a stream of queries (seed 二, 图1; `@xyp/synthesis` owns the
 * selection and the fusion prompt). Per chunk:
 *
 *   1. per query, in one item slot: every `ensemble` model answers the query (one user turn) at
 *      once; the answers are scored by the reward function in one batched call for the query
 *      (`{prompt: query, response: answer, category}` each, checked by `checkRewardScores`);
 *   2. `selectSurvivors` over the chunk's queries (an absolute threshold, or the per-category
 *      type-7 quantile of the chunk's scores; a score equal to the threshold survives);
 *   3. per resolved query, in an item slot: the aggregator fuses the survivors
 *      (`fusionMessages`: the query, then the survivors numbered by score, no model names).
 *
 * A query is `kept` (item `<queryId>/fused`, every candidate with its score and decision in
 * provenance), `dropped`: `unresolved` (no survivor; its scores in the outcome) or `empty-fusion`,
 * or `failed`: `call-failed` (every model refused the request for good; one refusal only drops that
 * candidate, recorded with score null and reason `call-failed`), `fusion-call-failed`.
 * A failing reward function stops the run (it is no item's fault).
 */
import { checkRewardScores, type TextReward } from '@xyp/contracts';
import type { LlmGateway } from '@xyp/llm';
import {
  FUSION_PROMPT_VERSION,
  chatMessages,
  fusionMessages,
  provenanceCandidates,
  selectSurvivors,
  type EnsembleCandidate,
  type EnsembleQuery,
  type EnsembleSelection,
  type SftCandidate,
  type SftItem,
} from '@xyp/synthesis';
import { attempt, chatRequest, count, distinct } from './calls';
import { EnsembleRunConfig, checkModelNames, parseRunConfig, type EnsembleRunConfigInput } from './config';
import { runSynthesis, type ChunkGenerator, type RunOptions, type SynthesisRunResult } from './driver';
import type { InputRecord, InputValues, ValidInput } from './inputs';
import type { SynthesisOutcome } from './outcomes';

export interface EnsembleDeps extends Omit<RunOptions, 'gatewayStats'> {
  gateway: LlmGateway;
  /** The reward model (UFRM): in process, or `RewardService.Score` over gRPC. */
  reward: TextReward;
}

type Query = ValidInput<InputValues['ensemble']>;

/** One query after step 1: the answers that came back (scored), and the models that refused. */
interface Answered {
  query: Query;
  candidates: EnsembleCandidate[];
  /** Per ensemble model, in config order: the candidate's index, or the refusal. */
  slots: ({ candidate: number } | { model: string; detail: string })[];
}

const score = (s: number | null | undefined) => (s === null || s === undefined || !Number.isFinite(s) ? null : s);

/** The ensemble generator for the driver (module comment). */
export function ensembleGenerator(configInput: EnsembleRunConfigInput, gateway: LlmGateway, reward: TextReward): ChunkGenerator<InputValues['ensemble']> {
  const config = parseRunConfig(EnsembleRunConfig, configInput, 'ensemble');
  checkModelNames(config.models, gateway.modelNames, 'ensemble');
  const { ensemble, aggregator } = config.models;

  async function answer(query: Query, signal: AbortSignal): Promise<Answered> {
    const request = chatRequest([{ role: 'user', content: query.value.query }], config.sampling);
    const replies = await Promise.all(ensemble.map((model) => attempt(() => gateway.chat(model, request, { signal }))));
    const candidates: EnsembleCandidate[] = [];
    const slots: Answered['slots'] = replies.map((reply, i) => {
      if (!reply.ok) return { model: ensemble[i], detail: reply.detail };
      candidates.push({ model: reply.value.model, answer: reply.value.content.trim(), score: Number.NaN });
      return { candidate: candidates.length - 1 };
    });
    if (candidates.length > 0) {
      const scores = checkRewardScores(await reward(candidates.map((c) => ({ prompt: query.value.query, response: c.answer, category: query.category })), { signal }), candidates.length, 'the reward function');
      scores.forEach((s, i) => (candidates[i].score = s));
    }
    return { query, candidates, slots };
  }

  /** Every candidate in ensemble order: the selection's decisions, the refusals as `call-failed`. */
  function provenanceOf(answered: Answered, selection: EnsembleSelection): SftCandidate[] {
    const decided = provenanceCandidates(selection.decisions);
    return answered.slots.map((slot) => ('candidate' in slot ? decided[slot.candidate] : { model: slot.model, score: null, kept: false, reason: 'call-failed' }));
  }

  async function fuse(answered: Answered, selection: Extract<EnsembleSelection, { status: 'resolved' }>, signal: AbortSignal, stats: Record<string, number>): Promise<{ outcome: SynthesisOutcome; item?: SftItem }> {
    const { query } = answered;
    const base = { id: query.id, category: query.category };
    const { messages } = fusionMessages(selection);
    const fused = await attempt(() => gateway.chat(aggregator, chatRequest(messages, config.sampling), { signal }));
    count(stats, 'fusions');
    if (!fused.ok) return { outcome: { ...base, status: 'failed', reason: 'fusion-call-failed', detail: fused.detail } };
    const content = fused.value.content.trim();
    if (content.length === 0) return { outcome: { ...base, status: 'dropped', reason: 'empty-fusion', detail: `the aggregator ${fused.value.model} answered with nothing` } };
    const id = `${query.id}/fused`;
    const item: SftItem = {
      id,
      messages: chatMessages(query.value.query, content),
      category: query.category,
      provenance: {
        generator: 'ensemble',
        models: distinct([...selection.survivors.map((s) => s.model), fused.value.model]),
        promptVersion: FUSION_PROMPT_VERSION,
        fusionPromptVersion: FUSION_PROMPT_VERSION,
        sourceId: query.id,
        candidates: provenanceOf(answered, selection),
        threshold: selection.threshold,
        aggregator: fused.value.model,
      },
    };
    return { outcome: { ...base, status: 'kept', itemIds: [id] }, item };
  }

  return {
    method: 'ensemble',
    config,
    concurrency: config.concurrency,
    chunkSize: config.chunkSize,
    async run(queries, context) {
      const stats: Record<string, number> = {};
      const answered = await Promise.all(queries.map((q) => context.slot(() => answer(q, context.signal))));
      const scored = answered.filter((a) => a.candidates.length > 0);
      const { selections } = selectSurvivors(
        scored.map((a): EnsembleQuery => ({ id: a.query.id, category: a.query.category, query: a.query.value.query, candidates: a.candidates })),
        config.selection,
      );
      const selectionOf = new Map(selections.map((s) => [s.queryId, s] as const));
      const results = await Promise.all(
        answered.map(async (a): Promise<{ outcome: SynthesisOutcome; item?: SftItem }> => {
          const base = { id: a.query.id, category: a.query.category };
          const refusals = a.slots.filter((s): s is { model: string; detail: string } => 'model' in s);
          count(stats, 'candidates', a.candidates.length);
          count(stats, 'candidates.call-failed', refusals.length);
          const selection = selectionOf.get(a.query.id);
          if (!selection) return { outcome: { ...base, status: 'failed', reason: 'call-failed', detail: `every ensemble model refused: ${refusals.map((r) => r.detail).join('; ')}` } };
          for (const d of selection.decisions) count(stats, d.kept ? 'candidates.kept' : `candidates.dropped.${d.reason}`);
          if (selection.status === 'unresolved') {
            count(stats, 'unresolved');
            const scores = provenanceOf(a, selection).map((c) => score(c.score));
            return { outcome: { ...base, status: 'dropped', reason: 'unresolved', detail: `no candidate reached the threshold ${selection.threshold} (scores ${scores.map((s) => (s === null ? 'null' : String(s))).join(', ')})`, scores } };
          }
          return context.slot(() => fuse(a, selection, context.signal, stats));
        }),
      );
      return { items: results.flatMap((r) => (r.item ? [r.item] : [])), outcomes: results.map((r) => r.outcome), stats };
    },
  };
}

/** The ensemble over `queries` (`readInputs('ensemble', path)`), committed to `deps.output`. */
export function runEnsemble(queries: AsyncIterable<InputRecord<InputValues['ensemble']>>, config: EnsembleRunConfigInput, deps: EnsembleDeps): Promise<SynthesisRunResult> {
  return runSynthesis(ensembleGenerator(config, deps.gateway, deps.reward), queries, { ...deps, gatewayStats: () => deps.gateway.stats() });
}
