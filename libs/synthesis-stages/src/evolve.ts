/**
 * Evol-Instruct over a stream of seed instructions (`@xyp/synthesis` owns the operations, the
 * prompts, the elimination rules and the `EvolPool`). Each chunk's seeds are one pool, evolved in
 * rounds until `evolPoolStatus` says done (`pool.maxRounds`, or nothing left to evolve). Per task
 * of a round (`planEvolRound`):
 *
 *   1. the generator rewrites the instruction (`task.messages`: in-depth or in-breadth);
 *   2. at once: the generator answers the rewritten instruction (one user turn), and the judge
 *      compares it with its parent (`EVOL_EQUALITY`, read by `parseEqualityVerdict`);
 *   3. `applyEvolRound` applies the elimination rules; a failed evolution puts its parent back in
 *      the pool. After every round the pool is saved (`saveProgress`): a run that stops mid-chunk
 *      resumes at the next round; the final pool is the chunk's committed state.
 *
 * Every evolved item (depth ≥ 1, id `<seedId>/evol-<depth>`) becomes an SFT item. A seed is `kept`
 * with its lineage's items; else `dropped` with its last elimination reason (the detail counts
 * them all), or `failed: call-failed` when every attempt was refused by the endpoint.
 */
import type { LlmGateway } from '@xyp/llm';
import {
  EVOL_EQUALITY,
  applyEvolRound,
  categoryById,
  chatMessages,
  createEvolPool,
  evolPoolStatus,
  evolvedItems,
  parseEqualityVerdict,
  parseEvolPool,
  planEvolRound,
  type EvolOutcome,
  type EvolPool,
  type EvolTask,
  type SftItem,
} from '@xyp/synthesis';
import { attempt, chatRequest, count, distinct } from './calls';
import { EvolRunConfig, checkModelNames, parseRunConfig, type EvolRunConfigInput } from './config';
import { runSynthesis, type ChunkGenerator, type RunOptions, type SynthesisRunResult } from './driver';
import type { InputRecord, InputValues, ValidInput } from './inputs';
import type { SynthesisOutcome } from './outcomes';

export interface EvolDeps extends Omit<RunOptions, 'gatewayStats'> {
  gateway: LlmGateway;
}

type Seed = ValidInput<InputValues['evolve']>;

/** The saved pool when it is this chunk's (the same seeds), else undefined. */
function resumedPool(progress: unknown, seeds: readonly Seed[]): EvolPool | undefined {
  if (progress === undefined) return undefined;
  const pool = parseEvolPool(progress);
  const roots = pool.items.filter((i) => i.depth === 0).map((i) => i.id);
  return roots.length === seeds.length && roots.every((id, i) => id === seeds[i].id) ? pool : undefined;
}

/** The Evol-Instruct generator for the driver (module comment). */
export function evolGenerator(configInput: EvolRunConfigInput, gateway: LlmGateway): ChunkGenerator<InputValues['evolve']> {
  const config = parseRunConfig(EvolRunConfig, configInput, 'evolve');
  checkModelNames(config.models, gateway.modelNames, 'evolve');
  const { generator, judge } = config.models;
  const categoryName = (id: string) => categoryById(id)?.name;

  async function evolve(task: EvolTask, parentInstruction: string, signal: AbortSignal): Promise<EvolOutcome> {
    const rewritten = await attempt(() => gateway.chat(generator, chatRequest(task.messages, config.sampling), { signal }));
    if (!rewritten.ok) return { taskId: task.taskId, error: rewritten.detail };
    const instruction = rewritten.value.content.trim();
    if (instruction.length === 0) return { taskId: task.taskId, instruction, response: '', equality: null, models: [rewritten.value.model] };
    const [response, verdict] = await Promise.all([
      attempt(() => gateway.chat(generator, chatRequest([{ role: 'user', content: instruction }], config.sampling), { signal })),
      attempt(() => gateway.chat(judge, chatRequest(EVOL_EQUALITY.render({ original: parentInstruction, evolved: instruction }), config.judgeSampling), { signal })),
    ]);
    if (!response.ok) return { taskId: task.taskId, error: response.detail };
    if (!verdict.ok) return { taskId: task.taskId, error: verdict.detail };
    return { taskId: task.taskId, instruction, response: response.value.content.trim(), equality: parseEqualityVerdict(verdict.value.content), models: distinct([rewritten.value.model, response.value.model]) };
  }

  return {
    method: 'evol-instruct',
    config,
    concurrency: config.concurrency,
    chunkSize: config.chunkSize,
    async run(seeds, context) {
      const stats: Record<string, number> = {};
      let pool =
        resumedPool(context.progress, seeds) ??
        createEvolPool(
          seeds.map((s) => ({ id: s.id, category: s.category, instruction: s.value.instruction, ...(s.value.response !== undefined ? { response: s.value.response } : {}) })),
          { ...config.pool, seed: config.seed },
        );
      while (!evolPoolStatus(pool).done) {
        const tasks = planEvolRound(pool, categoryName);
        const instructions = new Map(pool.items.map((i) => [i.id, i.instruction] as const));
        const outcomes = await Promise.all(tasks.map((task) => context.slot(() => evolve(task, instructions.get(task.itemId) ?? '', context.signal))));
        pool = applyEvolRound(pool, outcomes).pool;
        await context.saveProgress(pool);
      }
      const final = pool;
      // In input order, each seed's lineage by depth.
      const seedIndex = new Map(seeds.map((s, i) => [s.id, i] as const));
      const evolved = evolvedItems(final).sort((a, b) => (seedIndex.get(a.rootId) ?? 0) - (seedIndex.get(b.rootId) ?? 0) || a.depth - b.depth);
      const items: SftItem[] = evolved.map((item) => ({
        id: item.id,
        messages: chatMessages(item.instruction, item.response ?? ''),
        category: item.category,
        provenance: {
          generator: 'evol-instruct',
          models: item.models ?? [generator],
          promptVersion: item.promptVersion ?? '',
          promptVersions: [EVOL_EQUALITY.version],
          sourceId: item.rootId,
          ...(item.parentId !== undefined ? { parentId: item.parentId } : {}),
          depth: item.depth,
          ...(item.operation !== undefined ? { operation: item.operation } : {}),
          judge,
          round: item.round,
        },
      }));
      count(stats, 'rounds', final.round);
      count(stats, 'evolved', evolved.length);
      count(stats, 'tasks', evolved.length + final.failures.length);
      for (const f of final.failures) count(stats, `failed.${f.reason}`);

      const rootOf = new Map(final.items.map((i) => [i.id, i.rootId] as const));
      const outcomes: SynthesisOutcome[] = seeds.map((seed) => {
        const base = { id: seed.id, category: seed.category };
        const lineage = items.filter((i) => i.provenance.sourceId === seed.id).map((i) => i.id);
        if (lineage.length > 0) return { ...base, status: 'kept', itemIds: lineage };
        const failures = final.failures.filter((f) => rootOf.get(f.itemId) === seed.id);
        const tally = new Map<string, number>();
        for (const f of failures) tally.set(f.reason, (tally.get(f.reason) ?? 0) + 1);
        const listed = [...tally].map(([r, n]) => `${r} ${n}`).join(', ');
        const eliminated = failures.filter((f) => f.reason !== 'call-failed');
        if (eliminated.length === 0) {
          const last = failures.at(-1);
          return { ...base, status: 'failed', reason: 'call-failed', detail: last?.detail ?? 'no evolution was attempted' };
        }
        return { ...base, status: 'dropped', reason: eliminated[eliminated.length - 1].reason, detail: `every evolution failed (${failures.length} in ${final.round} round(s)): ${listed}` };
      });
      return { items, outcomes, stats, state: final };
    },
  };
}

/** Evol-Instruct over `seeds` (`readInputs('evolve', path)`), committed to `deps.output`. */
export function runEvolve(seeds: AsyncIterable<InputRecord<InputValues['evolve']>>, config: EvolRunConfigInput, deps: EvolDeps): Promise<SynthesisRunResult> {
  return runSynthesis(evolGenerator(config, deps.gateway), seeds, { ...deps, gatewayStats: () => deps.gateway.stats() });
}
