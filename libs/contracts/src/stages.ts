import { z } from 'zod';
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
  'cpt': { payload: CptPayload, result: CptResult },
  'synthesis.generate': { payload: SynthesisGeneratePayload, result: SynthesisGenerateResult },
  'reward.train': { payload: RewardTrainPayload, result: RewardTrainResult },
  'rlhf.ppo': { payload: RlhfPpoPayload, result: RlhfPpoResult },
} as const satisfies Record<StageName, { payload: z.ZodType; result: z.ZodType }>;

export type PayloadOf<S extends StageName> = z.input<(typeof STAGES)[S]['payload']>;
export type ParsedPayloadOf<S extends StageName> = z.output<(typeof STAGES)[S]['payload']>;
export type ResultOf<S extends StageName> = z.output<(typeof STAGES)[S]['result']>;

/** Stages a run of the bundled recipe goes through, in order, before `pipeline.run` closes it. */
export const RECIPE_STAGES: readonly StageName[] = ['corpus.inspect'];

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
