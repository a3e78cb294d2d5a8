import { z } from 'zod';
import { ArtifactEntry } from './artifacts';
import { PackConfig, ShardReport, ShardSpec, TokenizerRef } from './corpus-bucket';
import { RunId } from './ids';

/**
 * Every stage of the recipe, its queue and the app whose worker owns it.
 *
 * The stage name is the BullMQ queue name. Renaming one strands every job that is
 * waiting in Redis under the old name: add a new stage and drain the old queue instead.
 */
export const STAGE_OWNERS = {
  'pipeline.run': 'control-plane',
  'corpus.inspect': 'corpus',
  'corpus.bucket': 'corpus',
  'corpus.mix': 'corpus',
  'cpt': 'trainer',
  'synthesis.generate': 'synthesis',
  'reward.train': 'reward',
  'rlhf.ppo': 'rlhf',
} as const;

export type StageName = keyof typeof STAGE_OWNERS;
export type AppName = (typeof STAGE_OWNERS)[StageName];
export const STAGE_NAMES = Object.keys(STAGE_OWNERS) as StageName[];

/** Fields every stage job carries: the run it belongs to. */
const stageJob = <T extends z.ZodRawShape>(shape: T) => z.object({ runId: RunId, ...shape }).strict();

/** Fields every part job of a fanned-out stage carries: its run, its place among the parts. */
const partJob = <T extends z.ZodRawShape>(shape: T) =>
  z.object({ runId: RunId, partIndex: z.number().int().nonnegative(), partCount: z.number().int().positive(), ...shape }).strict();

const CategoryCount = z.object({ docs: z.number().int().nonnegative(), chars: z.number().int().nonnegative() });

/** The end of a run: gathers every stage's result into the run report. */
export const PipelineRunPayload = stageJob({ stages: z.array(z.string()).min(1) });
export const PipelineRunResult = z.object({
  reportKey: z.string(),
  stages: z.record(z.string(), z.record(z.string(), z.unknown())),
});

/** Reads the run's input corpus, checks each line and counts documents per category. */
export const CorpusInspectPayload = stageJob({
  /** Store key of the input JSONL (`runs/<runId>/input/objects/<sha256>`). */
  inputKey: z.string().min(1),
});
export const CorpusInspectResult = z.object({
  docs: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  chars: z.number().int().nonnegative(),
  categories: z.record(z.string(), CategoryCount),
  rejectReasons: z.record(z.string(), z.number().int().nonnegative()),
});

/**
 * Tokenizes the run's input and packs it into Megatron datasets per sequence length
 * (bucket method or a baseline). Fans out into shard jobs (`corpus.bucket.shard`) on the
 * same queue; shards are fixed by `config.shardLines`, so the output is the same for any
 * number of workers.
 */
export const CorpusBucketPayload = stageJob({
  inputKey: z.string().min(1),
  config: PackConfig.prefault({}),
  /** `llama3` (bundled) or a tokenizer.json path readable by the corpus workers. */
  tokenizer: z.string().min(1).default('llama3'),
});
const Ratio = z.number().min(0);
export const CorpusBucketResult = z.object({
  strategy: z.string(),
  /** Non-blank input lines: kept + rejected (`docs` of corpus.inspect counts kept documents only). */
  documentsIn: z.number().int().nonnegative(),
  kept: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  rejectsByReason: z.record(z.string(), z.number().int().nonnegative()),
  tokens: z.number().int().nonnegative(),
  paddingRatio: Ratio,
  truncationRatio: Ratio,
  concatRatio: Ratio,
  sequencesPerBucket: z.record(z.string(), z.number().int().nonnegative()),
  categories: z.array(z.string()),
  shards: z.number().int().nonnegative(),
  tokenizer: z.string(),
});

/** One shard of a corpus.bucket run: lines [startLine, endLine) of the input. */
export const CorpusBucketShardPayload = partJob({
  /**
   * Store key of what the part reads `[shard.startByte, shard.endByte)` of: the run's input
   * (plain), or the shard's own gzip object written when the stage planned (gzip input).
   */
  inputKey: z.string().min(1),
  gzip: z.boolean(),
  shard: ShardSpec,
  config: PackConfig,
  tokenizer: TokenizerRef,
  scratchPrefix: z.string().min(1),
});
export const CorpusBucketShardResult = z.object({
  report: ShardReport,
  /** The shard's files in the artifact store, by the name the merge asks for. */
  files: z.record(z.string(), ArtifactEntry),
});

/**
 * The dynamic data mixture: next-stage sampling weights (or next-epoch SFT ratios) from
 * per-category loss reports, moving share from fast-converging to slow categories.
 */
export const CorpusMixPayload = stageJob({
  /** JSONL `{step, category, loss, tokens?}` per line. */
  lossesKey: z.string().min(1),
  /** JSON `{category: weight}`. */
  weightsKey: z.string().min(1),
  /** JSON controller config; defaults when absent. */
  configKey: z.string().min(1).optional(),
  mode: z.enum(['cpt', 'sft']).default('cpt'),
});
export const CorpusMixResult = z.object({
  mode: z.string(),
  weights: z.record(z.string(), z.number().min(0).max(1)),
  changes: z.array(z.object({ category: z.string(), oldWeight: z.number().nullable(), newWeight: z.number(), reason: z.string() })),
  notes: z.array(z.string()),
});

/** Continued pretraining on packed shards (trainer). */
export const CptPayload = stageJob({
  shardsStage: z.string().default('corpus.bucket'),
  steps: z.number().int().positive(),
});
export const CptResult = z.object({ checkpointKey: z.string(), finalLoss: z.number() });

/** SFT data synthesis (SelfQA, Evol-Instruct, expert-seeded, multi-model ensemble). */
export const SynthesisGeneratePayload = stageJob({
  method: z.enum(['selfqa', 'evol-instruct', 'expert-seeded', 'ensemble']),
  seedsKey: z.string().min(1),
});
export const SynthesisGenerateResult = z.object({ samples: z.number().int().nonnegative(), datasetKey: z.string() });

/** UFRM reward model training, stage 1 (general) or stage 2 (finance). */
export const RewardTrainPayload = stageJob({
  phase: z.enum(['general', 'finance']),
  pairsKey: z.string().min(1),
});
export const RewardTrainResult = z.object({ checkpointKey: z.string(), alignmentRate: z.number().min(0).max(1) });

/** One PPO round of PEI-RLHF with the KL coefficient the improve step chose. */
export const RlhfPpoPayload = stageJob({
  round: z.number().int().nonnegative(),
  klCoefficient: z.number().positive(),
  promptsKey: z.string().min(1),
});
export const RlhfPpoResult = z.object({ checkpointKey: z.string(), meanReward: z.number(), meanKl: z.number() });

/**
 * Payload and result schema of each stage. Producers and workers take their types
 * from here, so enqueueing a payload on the wrong stage does not compile.
 */
export const STAGES = {
  'pipeline.run': { payload: PipelineRunPayload, result: PipelineRunResult },
  'corpus.inspect': { payload: CorpusInspectPayload, result: CorpusInspectResult },
  'corpus.bucket': { payload: CorpusBucketPayload, result: CorpusBucketResult },
  'corpus.mix': { payload: CorpusMixPayload, result: CorpusMixResult },
  'cpt': { payload: CptPayload, result: CptResult },
  'synthesis.generate': { payload: SynthesisGeneratePayload, result: SynthesisGenerateResult },
  'reward.train': { payload: RewardTrainPayload, result: RewardTrainResult },
  'rlhf.ppo': { payload: RlhfPpoPayload, result: RlhfPpoResult },
} as const satisfies Record<StageName, { payload: z.ZodType; result: z.ZodType }>;

export type PayloadOf<S extends StageName> = z.input<(typeof STAGES)[S]['payload']>;
export type ParsedPayloadOf<S extends StageName> = z.output<(typeof STAGES)[S]['payload']>;
export type ResultOf<S extends StageName> = z.output<(typeof STAGES)[S]['result']>;

/**
 * Stages that fan out into part jobs on their own queue (BullMQ's process-step-jobs
 * pattern): the stage job plans the parts, waits for them as their parent, then merges.
 */
export const STAGE_PARTS = {
  'corpus.bucket': { jobName: 'corpus.bucket.shard', payload: CorpusBucketShardPayload, result: CorpusBucketShardResult },
} as const;
export type PartStage = keyof typeof STAGE_PARTS;
export type PartPayloadOf<S extends StageName> = S extends PartStage ? z.input<(typeof STAGE_PARTS)[S]['payload']> : never;
export type ParsedPartPayloadOf<S extends StageName> = S extends PartStage ? z.output<(typeof STAGE_PARTS)[S]['payload']> : never;
export type PartResultOf<S extends StageName> = S extends PartStage ? z.output<(typeof STAGE_PARTS)[S]['result']> : never;

export function partsOf(stage: StageName): (typeof STAGE_PARTS)[PartStage] | undefined {
  return (STAGE_PARTS as Partial<Record<StageName, (typeof STAGE_PARTS)[PartStage]>>)[stage];
}

/** Job id of part `index` of a stage job: the same on every retry, so parts are added once. */
export function partJobId(stageJobId: string, index: number): string {
  return `${stageJobId}.part-${String(index).padStart(5, '0')}`;
}

/** Stages a run of the bundled recipe goes through, in order, before `pipeline.run` closes it. */
export const RECIPE_STAGES: readonly StageName[] = ['corpus.inspect', 'corpus.bucket'];

export function isStageName(name: string): name is StageName {
  return Object.prototype.hasOwnProperty.call(STAGE_OWNERS, name);
}

/**
 * Deterministic job id of a stage of a run: a retried submission finds the same job.
 * BullMQ forbids `:` in custom ids; run ids and stage names never contain one.
 */
export function stageJobId(runId: string, stage: StageName): string {
  return `${runId}.${stage}`;
}
