import type { z } from 'zod';
import { CorpusBucketPayload, CorpusBucketResult, CorpusBucketShardPayload, CorpusBucketShardResult, corpusBucketPlan } from './stages/corpus-bucket';
import { CorpusComparePayload, CorpusCompareResult, corpusComparePlan } from './stages/corpus-compare';
import { CorpusInspectPayload, CorpusInspectResult, corpusInspectPlan } from './stages/corpus-inspect';
import { CorpusMixPayload, CorpusMixResult, corpusMixPlan } from './stages/corpus-mix';
import { CptPayload, CptResult, cptPlan } from './stages/cpt';
import { SftPayload, SftResult, sftPlan } from './stages/sft';
import { EvalPayload, EvalResult, evalPlan } from './stages/eval';
import { PipelineRunPayload, PipelineRunResult } from './stages/pipeline-run';
import { RewardEvaluatePayload, RewardEvaluateResult, rewardEvaluatePlan } from './stages/reward-evaluate';
import { RewardPairsPayload, RewardPairsResult, rewardPairsPlan } from './stages/reward-pairs';
import { RewardPreparePayload, RewardPrepareResult, rewardPreparePlan } from './stages/reward-prepare';
import { RewardTrainPayload, RewardTrainResult, rewardTrainPlan } from './stages/reward-train';
import { RlhfPpoPayload, RlhfPpoResult, rlhfPpoPlan } from './stages/rlhf-ppo';
import { RlhfCiFilterPayload, RlhfCiFilterResult, rlhfCiFilterPlan } from './stages/rlhf-ci-filter';
import { RlhfEvaluatePayload, RlhfEvaluateResult, rlhfEvaluatePlan } from './stages/rlhf-evaluate';
import { RlhfImprovePayload, RlhfImproveResult, rlhfImprovePlan } from './stages/rlhf-improve';
import type { StagePlan } from './stages/stage-kit';
import {
  SynthesisAnalysisPayload,
  SynthesisEnsemblePayload,
  SynthesisEvolvePayload,
  SynthesisGeneratorResult,
  SynthesisMergePayload,
  SynthesisMergeResult,
  SynthesisSelfQaPayload,
  synthesisAnalysisPlan,
  synthesisEnsemblePlan,
  synthesisEvolvePlan,
  synthesisMergePlan,
  synthesisSelfQaPlan,
} from './stages/synthesis';

export * from './stages/stage-kit';
export * from './stages/pipeline-run';
export * from './stages/corpus-inspect';
export * from './stages/corpus-bucket';
export * from './stages/corpus-mix';
export * from './stages/corpus-compare';
export * from './stages/cpt';
export * from './stages/sft';
export * from './stages/eval';
export * from './stages/synthesis';
export * from './stages/reward-prepare';
export * from './stages/reward-pairs';
export * from './stages/reward-train';
export * from './stages/reward-evaluate';
export * from './stages/rlhf-ppo';
export * from './stages/rlhf-ci-filter';
export * from './stages/rlhf-evaluate';
export * from './stages/rlhf-improve';

/**
 * Every stage of the recipe, its queue and the app whose worker owns it. Each stage's schemas
 * (and, for stages a run can include, its parameters and payload builder) are in `stages/<stage>.ts`.
 *
 * The stage name is the BullMQ queue name. Renaming one strands every job that is
 * waiting in Redis under the old name: add a new stage and drain the old queue instead.
 */
export const STAGE_OWNERS = {
  'pipeline.run': 'control-plane',
  'corpus.inspect': 'corpus',
  'corpus.bucket': 'corpus',
  'corpus.mix': 'corpus',
  'corpus.compare': 'corpus',
  'cpt': 'trainer',
  'sft': 'trainer',
  'eval': 'trainer',
  'synthesis.selfqa': 'synthesis',
  'synthesis.evolve': 'synthesis',
  'synthesis.analysis': 'synthesis',
  'synthesis.ensemble': 'synthesis',
  'synthesis.merge': 'synthesis',
  'reward.prepare': 'reward',
  'reward.pairs': 'reward',
  'reward.train': 'reward',
  'reward.evaluate': 'reward',
  'rlhf.ci-filter': 'rlhf',
  'rlhf.ppo': 'rlhf',
  'rlhf.evaluate': 'rlhf',
  'rlhf.improve': 'rlhf',
} as const;

export type StageName = keyof typeof STAGE_OWNERS;
export type AppName = (typeof STAGE_OWNERS)[StageName];
export const STAGE_NAMES = Object.keys(STAGE_OWNERS) as StageName[];

/**
 * Payload and result schema of each stage. Producers and workers take their types
 * from here, so enqueueing a payload on the wrong stage does not compile.
 */
export const STAGES = {
  'pipeline.run': { payload: PipelineRunPayload, result: PipelineRunResult },
  'corpus.inspect': { payload: CorpusInspectPayload, result: CorpusInspectResult },
  'corpus.bucket': { payload: CorpusBucketPayload, result: CorpusBucketResult },
  'corpus.mix': { payload: CorpusMixPayload, result: CorpusMixResult },
  'corpus.compare': { payload: CorpusComparePayload, result: CorpusCompareResult },
  'cpt': { payload: CptPayload, result: CptResult },
  'sft': { payload: SftPayload, result: SftResult },
  'eval': { payload: EvalPayload, result: EvalResult },
  'synthesis.selfqa': { payload: SynthesisSelfQaPayload, result: SynthesisGeneratorResult },
  'synthesis.evolve': { payload: SynthesisEvolvePayload, result: SynthesisGeneratorResult },
  'synthesis.analysis': { payload: SynthesisAnalysisPayload, result: SynthesisGeneratorResult },
  'synthesis.ensemble': { payload: SynthesisEnsemblePayload, result: SynthesisGeneratorResult },
  'synthesis.merge': { payload: SynthesisMergePayload, result: SynthesisMergeResult },
  'reward.prepare': { payload: RewardPreparePayload, result: RewardPrepareResult },
  'reward.pairs': { payload: RewardPairsPayload, result: RewardPairsResult },
  'reward.train': { payload: RewardTrainPayload, result: RewardTrainResult },
  'reward.evaluate': { payload: RewardEvaluatePayload, result: RewardEvaluateResult },
  'rlhf.ci-filter': { payload: RlhfCiFilterPayload, result: RlhfCiFilterResult },
  'rlhf.ppo': { payload: RlhfPpoPayload, result: RlhfPpoResult },
  'rlhf.evaluate': { payload: RlhfEvaluatePayload, result: RlhfEvaluateResult },
  'rlhf.improve': { payload: RlhfImprovePayload, result: RlhfImproveResult },
} as const satisfies Record<StageName, { payload: z.ZodType; result: z.ZodType }>;

export type PayloadOf<S extends StageName> = z.input<(typeof STAGES)[S]['payload']>;
export type ParsedPayloadOf<S extends StageName> = z.output<(typeof STAGES)[S]['payload']>;
export type ResultOf<S extends StageName> = z.output<(typeof STAGES)[S]['result']>;

/**
 * The payload schemas again, as a mapped type, so code generic in the stage (`S extends
 * StageName`) gets `ParsedPayloadOf<S>` from `PAYLOAD_SCHEMAS[stage].safeParse` without a cast.
 */
export const PAYLOAD_SCHEMAS: { readonly [S in StageName]: z.ZodType<ParsedPayloadOf<S>, PayloadOf<S>> } = {
  'pipeline.run': STAGES['pipeline.run'].payload,
  'corpus.inspect': STAGES['corpus.inspect'].payload,
  'corpus.bucket': STAGES['corpus.bucket'].payload,
  'corpus.mix': STAGES['corpus.mix'].payload,
  'corpus.compare': STAGES['corpus.compare'].payload,
  'cpt': STAGES['cpt'].payload,
  'sft': STAGES['sft'].payload,
  'eval': STAGES['eval'].payload,
  'synthesis.selfqa': STAGES['synthesis.selfqa'].payload,
  'synthesis.evolve': STAGES['synthesis.evolve'].payload,
  'synthesis.analysis': STAGES['synthesis.analysis'].payload,
  'synthesis.ensemble': STAGES['synthesis.ensemble'].payload,
  'synthesis.merge': STAGES['synthesis.merge'].payload,
  'reward.prepare': STAGES['reward.prepare'].payload,
  'reward.pairs': STAGES['reward.pairs'].payload,
  'reward.train': STAGES['reward.train'].payload,
  'reward.evaluate': STAGES['reward.evaluate'].payload,
  'rlhf.ci-filter': STAGES['rlhf.ci-filter'].payload,
  'rlhf.ppo': STAGES['rlhf.ppo'].payload,
  'rlhf.evaluate': STAGES['rlhf.evaluate'].payload,
  'rlhf.improve': STAGES['rlhf.improve'].payload,
};

/** Stages a run spec can include: those whose capability is in this build. */
export const RUNNABLE_STAGES = ['corpus.inspect', 'corpus.bucket', 'corpus.mix', 'corpus.compare', 'cpt', 'sft', 'eval', 'synthesis.selfqa', 'synthesis.evolve', 'synthesis.analysis', 'synthesis.ensemble', 'synthesis.merge', 'reward.prepare', 'reward.pairs', 'reward.train', 'reward.evaluate', 'rlhf.ci-filter', 'rlhf.ppo', 'rlhf.evaluate', 'rlhf.improve'] as const satisfies readonly StageName[];
export type RunnableStage = (typeof RUNNABLE_STAGES)[number];

/**
 * How each runnable stage takes part in a run: its parameters, input slots and payload builder
 * (beside its schemas, in `stages/<stage>.ts`). The mapped type ties each builder to its stage's
 * payload, so a builder returning another stage's payload does not compile.
 */
export const STAGE_PLANS: { readonly [S in RunnableStage]: StagePlan<PayloadOf<S>> } = {
  'corpus.inspect': corpusInspectPlan,
  'corpus.bucket': corpusBucketPlan,
  'corpus.mix': corpusMixPlan,
  'corpus.compare': corpusComparePlan,
  cpt: cptPlan,
  sft: sftPlan,
  eval: evalPlan,
  'synthesis.selfqa': synthesisSelfQaPlan,
  'synthesis.evolve': synthesisEvolvePlan,
  'synthesis.analysis': synthesisAnalysisPlan,
  'synthesis.ensemble': synthesisEnsemblePlan,
  'synthesis.merge': synthesisMergePlan,
  'reward.prepare': rewardPreparePlan,
  'reward.pairs': rewardPairsPlan,
  'reward.train': rewardTrainPlan,
  'reward.evaluate': rewardEvaluatePlan,
  'rlhf.ci-filter': rlhfCiFilterPlan,
  'rlhf.ppo': rlhfPpoPlan,
  'rlhf.evaluate': rlhfEvaluatePlan,
  'rlhf.improve': rlhfImprovePlan,
};

export function isRunnableStage(name: string): name is RunnableStage {
  return (RUNNABLE_STAGES as readonly string[]).includes(name);
}

/** The plan of a runnable stage, typed by its payload. */
export function stagePlan<S extends RunnableStage>(stage: S): StagePlan<PayloadOf<S>> {
  return STAGE_PLANS[stage];
}

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

export function isStageName(name: string): name is StageName {
  return Object.prototype.hasOwnProperty.call(STAGE_OWNERS, name);
}

/**
 * Deterministic job id of a stage instance of a run: `<runId>.<stage>` for the stage's default
 * instance, `<runId>.<stage>#<instance>` for a keyed one, so a retried submission or planning
 * step finds the same job. BullMQ forbids `:` in custom ids; none of the parts contains one.
 */
export function stageJobId(runId: string, stage: StageName, instance?: string): string {
  return instance ? `${runId}.${stage}#${instance}` : `${runId}.${stage}`;
}
