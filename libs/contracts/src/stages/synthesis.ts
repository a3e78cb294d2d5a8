import { z } from 'zod';
import { defineStagePlan, param, stageJob, type BoundInputs } from './stage-kit';

/**
 * SFT data synthesis (seed 二): four generators, each a stage over a batch of inputs, run as parallel
 * branches of one run and joined by `synthesis.merge`:
 *  - `synthesis.selfqa` (SelfQA): knowledge documents → instructions → grounded answers → filters;
 *  - `synthesis.evolve` (Evol-Instruct): seed instructions evolved in depth and breadth, eliminated by
 *    the paper's rules;
 *  - `synthesis.analysis`: expert-written analyses as few-shot exemplars for new analysis items;
 *  - `synthesis.ensemble`: N models answer each query, UFRM scores every answer, the survivors of a
 *    threshold are fused by an aggregator model.
 * Each commits `sft.jsonl` (chat format with provenance), `outcomes.jsonl` (every input kept, dropped or
 * failed with its reason) and `summary.json`. The models are the gateway's (`@xyp/llm`): checkpoints of
 * the run bound to `models`, served in process over the OpenAI API under their instance ids (`cpt`,
 * `cpt:small`), and the endpoint models of an optional registry file. `config` is the generator's run
 * configuration (`@xyp/synthesis-stages`), validated by the worker.
 */
export const SynthesisMethod = z.enum(['selfqa', 'evol-instruct', 'expert-seeded', 'ensemble']);
export type SynthesisMethod = z.infer<typeof SynthesisMethod>;

const LocalModel = z.object({
  /** The model's name in the gateway's registry (the instance id, `#` written `:`). */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/),
  manifestKey: z.string().min(1),
});

const generatorJob = <T extends z.ZodRawShape>(shape: T) =>
  stageJob({
    /** The inputs, JSONL (formats in libs/synthesis-stages/README.md). */
    inputKey: z.string().min(1),
    /** Checkpoints of the run served in process, by registry name. */
    localModels: z.array(LocalModel).default([]),
    /** A gateway model registry (YAML or JSON `{models: [...]}`) of endpoint models; keys come from the environment. */
    registryKey: z.string().min(1).optional(),
    /** The generator's run configuration (roles, sampling, thresholds, concurrency, chunk size, seed). */
    config: z.record(z.string(), z.unknown()).default({}),
    ...shape,
  });

export const SynthesisSelfQaPayload = generatorJob({});
export const SynthesisEvolvePayload = generatorJob({});
export const SynthesisAnalysisPayload = generatorJob({ exemplarsKey: z.string().min(1) });
export const SynthesisEnsemblePayload = generatorJob({ rewardManifestKey: z.string().min(1) });

export const SynthesisGeneratorResult = z.object({
  method: SynthesisMethod,
  inputs: z.number().int(),
  kept: z.number().int(),
  dropped: z.number().int(),
  failed: z.number().int(),
  items: z.number().int(),
  byCategory: z.record(z.string(), z.object({ inputs: z.number(), kept: z.number(), dropped: z.number(), failed: z.number() })),
  droppedByReason: z.record(z.string(), z.number()),
  failedByReason: z.record(z.string(), z.number()),
  /** Gateway calls and cache hits per model. */
  calls: z.record(z.string(), z.object({ requests: z.number(), cacheHits: z.number() })),
});

export const SynthesisMergePayload = stageJob({
  /** Each generator's `sft.jsonl`, in binding order. */
  sources: z.array(z.object({ instance: z.string().min(1), key: z.string().min(1) })).min(1),
  /** MinHash Jaccard threshold of a near duplicate. */
  nearDuplicateThreshold: z.number().gt(0).max(1).default(0.8),
});

export const SynthesisMergeResult = z.object({
  inputs: z.number().int(),
  kept: z.number().int(),
  exactDuplicates: z.number().int(),
  nearDuplicates: z.number().int(),
  byCategory: z.record(z.string(), z.number()),
  /** Items read from each source instance. */
  bySource: z.record(z.string(), z.number().int()),
  byGenerator: z.record(z.string(), z.object({ items: z.number().int(), kept: z.number().int() })),
});

const common = {
  concurrency: param.positiveInt(),
  chunk_size: param.positiveInt(),
  seed: param.int(),
  temperature: z.coerce.number().min(0).max(2),
  max_tokens: param.positiveInt(),
};

const modelSlots = {
  models: { description: 'checkpoints served in process as the models (e.g. cpt, cpt#small)', many: true, optional: true },
  registry: { description: 'a gateway registry (YAML or JSON) of endpoint models', optional: true },
};

/** The bound checkpoints as registry models, named by instance id (`#` → `:`, which registry names allow). */
function localModels(inputs: BoundInputs): z.input<typeof LocalModel>[] {
  return inputs.all('models').map(({ from, key }) => ({ name: from.replace('#', ':'), manifestKey: key }));
}

/** What every generator's payload takes from its slots: the input, the served checkpoints, the registry. */
function generatorInputs(inputs: BoundInputs): { inputKey: string; localModels: z.input<typeof LocalModel>[]; registryKey?: string } {
  const registry = inputs.maybe('registry');
  return { inputKey: inputs.one('input'), localModels: localModels(inputs), ...(registry ? { registryKey: registry } : {}) };
}

/** The run configuration's shared part from the shared parameters. */
function baseConfig(p: { concurrency?: number; chunk_size?: number; seed?: number; temperature?: number; max_tokens?: number }): Record<string, unknown> {
  const sampling = { ...(p.temperature !== undefined ? { temperature: p.temperature } : {}), ...(p.max_tokens ? { max_tokens: p.max_tokens } : {}), ...(p.seed !== undefined ? { seed: p.seed } : {}) };
  return {
    ...(p.concurrency ? { concurrency: p.concurrency } : {}),
    ...(p.chunk_size ? { chunkSize: p.chunk_size } : {}),
    ...(p.seed !== undefined ? { seed: p.seed } : {}),
    ...(Object.keys(sampling).length > 0 ? { sampling } : {}),
  };
}

const names = z.union([z.array(z.string().min(1)).min(1), z.string().min(1).transform((s) => s.split(',').map((n) => n.trim()))]);

export const synthesisSelfQaPlan = defineStagePlan({
  description: 'SelfQA: instructions generated from knowledge documents, answered from the same document, filtered (refers to the text, unsupported, duplicate)',
  slots: { input: { description: 'knowledge documents JSONL {id, category, text | data}' }, ...modelSlots },
  params: z.object({ generator: z.string().min(1), instructions_per_document: param.positiveInt(), min_support: param.ratio(), ...common }).partial().strict(),
  build: ({ runId, inputs, params: p }) => ({
    runId,
    ...generatorInputs(inputs),
    config: {
      ...baseConfig(p),
      ...(p.generator ? { models: { generator: p.generator } } : {}),
      ...(p.instructions_per_document ? { instructionsPerDocument: p.instructions_per_document } : {}),
      ...(p.min_support !== undefined ? { filter: { minSupport: p.min_support } } : {}),
    },
  }),
});

export const synthesisEvolvePlan = defineStagePlan({
  description: 'Evol-Instruct: seed instructions evolved in depth and breadth, answered, eliminated by the paper\'s rules; failed evolutions return to the pool',
  slots: { input: { description: 'seed instructions JSONL {id, category, instruction} or chat lines' }, ...modelSlots },
  params: z.object({ generator: z.string().min(1), judge: z.string().min(1), rounds: param.positiveInt(), max_depth: param.positiveInt(), ...common }).partial().strict(),
  build: ({ runId, inputs, params: p }) => ({
    runId,
    ...generatorInputs(inputs),
    config: {
      ...baseConfig(p),
      ...(p.generator || p.judge ? { models: { ...(p.generator ? { generator: p.generator } : {}), ...(p.judge ? { judge: p.judge } : {}) } } : {}),
      ...(p.rounds || p.max_depth ? { pool: { ...(p.rounds ? { maxRounds: p.rounds } : {}), ...(p.max_depth ? { maxDepth: p.max_depth } : {}) } } : {}),
    },
  }),
});

export const synthesisAnalysisPlan = defineStagePlan({
  description: 'expert-seeded analysis: expert analyses as few-shot exemplars, new items in the same format and depth, checked against the exemplars\' headings and length',
  slots: {
    input: { description: 'analysis topics JSONL {id, category, topic}' },
    exemplars: { description: 'expert analyses JSONL {id, category, analysis}' },
    ...modelSlots,
  },
  params: z.object({ generator: z.string().min(1), exemplars_per_topic: param.positiveInt(), ...common }).partial().strict(),
  build: ({ runId, inputs, params: p }) => ({
    runId,
    ...generatorInputs(inputs),
    exemplarsKey: inputs.one('exemplars'),
    config: {
      ...baseConfig(p),
      ...(p.generator ? { models: { generator: p.generator } } : {}),
      ...(p.exemplars_per_topic ? { exemplarsPerTopic: p.exemplars_per_topic } : {}),
    },
  }),
});

export const synthesisEnsemblePlan = defineStagePlan({
  description: 'multi-model ensemble: every model answers each query, UFRM scores the answers, those below the threshold are dropped, an aggregator fuses the rest',
  slots: {
    input: { description: 'queries JSONL {id, category, query} or chat lines' },
    reward: { description: 'the UFRM reward model (e.g. reward.train#finetune-s1)' },
    ...modelSlots,
  },
  params: z
    .object({ ensemble: names, aggregator: z.string().min(1), threshold: z.coerce.number(), threshold_quantile: param.ratio(), max_survivors: param.positiveInt(), ...common })
    .partial()
    .strict()
    .refine((p) => p.threshold === undefined || p.threshold_quantile === undefined, { message: 'give threshold or threshold_quantile, not both', path: ['threshold'] }),
  build: ({ runId, inputs, params: p }) => {
    const threshold = p.threshold !== undefined ? { absolute: p.threshold } : p.threshold_quantile !== undefined ? { quantile: p.threshold_quantile } : undefined;
    return {
      runId,
      ...generatorInputs(inputs),
      rewardManifestKey: inputs.one('reward'),
      config: {
        ...baseConfig(p),
        ...(p.ensemble || p.aggregator ? { models: { ...(p.ensemble ? { ensemble: p.ensemble } : {}), ...(p.aggregator ? { aggregator: p.aggregator } : {}) } } : {}),
        ...(threshold || p.max_survivors ? { selection: { ...(threshold ? { threshold } : {}), ...(p.max_survivors ? { maxSurvivors: p.max_survivors } : {}) } } : {}),
      },
    };
  },
});

export const synthesisMergePlan = defineStagePlan({
  description: 'the join of the synthesis branches: their SFT items concatenated, exact and near duplicates removed, counted per category',
  slots: { sources: { description: 'the generator instances (their sft.jsonl)', artifact: 'sft.jsonl', many: true } },
  params: z.object({ near_duplicate_threshold: z.coerce.number().gt(0).max(1) }).partial().strict(),
  build: ({ runId, inputs, params: p }) => ({
    runId,
    sources: inputs.all('sources').map(({ from, key }) => ({ instance: from, key })),
    ...(p.near_duplicate_threshold ? { nearDuplicateThreshold: p.near_duplicate_threshold } : {}),
  }),
});
