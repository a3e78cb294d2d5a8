import type { FlowJob } from 'bullmq';
import { z } from 'zod';
import { CATEGORY_MIXING, STAGES, STRATEGY_NAMES, stageJobId, type PayloadOf, type StageName } from '@xyp/contracts';
import { describeIssues } from './stage-worker';

/** What a run starts from: the committed input corpus. */
export interface RunInputs {
  runId: string;
  /** Store key of the input JSONL. */
  inputKey: string;
  /** Store keys of the run's other input files, by name. */
  files?: Record<string, string>;
}

function requiredFile(inputs: RunInputs, stage: string, name: string): string {
  const key = inputs.files?.[name];
  if (!key) throw new UnplannableStageError(`${stage} needs the input file ${name} (SubmitRun files)`);
  return key;
}

/** The parameters a run gives one stage: `<stage>.<name>` keys, with the stage prefix removed. */
export type StageParams = Record<string, string>;

const positiveInt = z.coerce.number().int().positive();

/** Parameters of corpus.bucket, as strings from SubmitRun, mapped onto its payload. */
const CorpusBucketParams = z
  .object({
    strategy: z.enum(STRATEGY_NAMES),
    buckets: z
      .string()
      .regex(/^\d+(,\d+)*$/, 'comma-separated token counts, e.g. 2048,4096')
      .transform((list) => list.split(',').map(Number)),
    seed: z.coerce.number().int().min(0),
    shard_lines: positiveInt,
    window_lines: positiveInt,
    window_tokens: positiveInt,
    padding_threshold: z.coerce.number().min(0).max(1),
    category_mixing: z.enum(CATEGORY_MIXING),
    max_reject_rate: z.coerce.number().min(0).max(1),
    append_eod: z.enum(['true', 'false']).transform((v) => v === 'true'),
    tokenizer: z.string().min(1),
  })
  .partial()
  .strict();

/**
 * How each runnable stage's payload follows from the run's inputs and parameters. A stage
 * missing here has a registered worker but no capability yet, so a run cannot include it.
 */
const PAYLOAD_BUILDERS: { [S in Exclude<StageName, 'pipeline.run'>]?: (inputs: RunInputs, params: StageParams) => PayloadOf<S> } = {
  'corpus.inspect': ({ runId, inputKey }, params) => ({ runId, inputKey, ...z.object({}).strict().parse(params) }),
  'corpus.mix': (inputs, params) => {
    const p = z.object({ mode: z.enum(['cpt', 'sft']) }).partial().strict().parse(params);
    const configKey = inputs.files?.['mixture-config.json'];
    return {
      runId: inputs.runId,
      lossesKey: requiredFile(inputs, 'corpus.mix', 'losses.jsonl'),
      weightsKey: requiredFile(inputs, 'corpus.mix', 'weights.json'),
      ...(configKey ? { configKey } : {}),
      ...p,
    };
  },
  'corpus.bucket': ({ runId, inputKey }, params) => {
    const p = CorpusBucketParams.parse(params);
    const config = Object.fromEntries(
      Object.entries({
        strategy: p.strategy,
        bucketLengths: p.buckets,
        seed: p.seed,
        shardLines: p.shard_lines,
        windowLines: p.window_lines,
        windowTokens: p.window_tokens,
        paddingThreshold: p.padding_threshold,
        categoryMixing: p.category_mixing,
        maxRejectRate: p.max_reject_rate,
        appendEod: p.append_eod,
      }).filter(([, value]) => value !== undefined),
    );
    return { runId, inputKey, config, ...(p.tokenizer ? { tokenizer: p.tokenizer } : {}) };
  },
};

/** Splits `<stage>.<name>` parameters by stage; a key naming no stage of the run is refused. */
function paramsByStage(stages: readonly StageName[], params: Record<string, string>): Record<string, StageParams> {
  const byStage: Record<string, StageParams> = Object.fromEntries(stages.map((stage) => [stage, {}]));
  const longestFirst = [...stages].sort((a, b) => b.length - a.length);
  for (const [key, value] of Object.entries(params)) {
    const stage = longestFirst.find((s) => key.startsWith(`${s}.`));
    if (!stage) throw new UnplannableStageError(`parameter ${key} names no stage of this run (${stages.join(', ')})`);
    byStage[stage][key.slice(stage.length + 1)] = value;
  }
  return byStage;
}

export const RUNNABLE_STAGES = Object.keys(PAYLOAD_BUILDERS) as StageName[];

/** A run that cannot be planned: a stage not available in this build, or bad stage parameters. */
export class UnplannableStageError extends Error {}

/**
 * A run as one BullMQ flow: the stages form a chain, each the child of the next, with
 * `pipeline.run` at the root. BullMQ runs children before parents, so the first stage
 * runs first and `pipeline.run` closes the run after the last. A child that fails for
 * good fails its parent (`failParentOnFailure`), so a broken stage stops the chain.
 * Every payload is built and validated here, before anything is enqueued.
 */
export function buildRunFlow(stages: readonly StageName[], inputs: RunInputs, params: Record<string, string> = {}): FlowJob {
  const { runId } = inputs;
  const byStage = paramsByStage(stages, params);
  let child: FlowJob | undefined;
  for (const stage of stages) {
    const builder = stage === 'pipeline.run' ? undefined : PAYLOAD_BUILDERS[stage];
    if (!builder) {
      throw new UnplannableStageError(`stage ${stage} cannot be part of a run in this build (runnable: ${RUNNABLE_STAGES.join(', ')})`);
    }
    let built: unknown;
    try {
      built = (builder as (i: RunInputs, p: StageParams) => unknown)(inputs, byStage[stage]);
    } catch (error) {
      if (error instanceof z.ZodError) throw new UnplannableStageError(`parameters of ${stage}: ${describeIssues(error)}`);
      throw error;
    }
    const parsed = STAGES[stage].payload.safeParse(built);
    if (!parsed.success) throw new UnplannableStageError(`invalid ${stage} payload for run ${runId}: ${describeIssues(parsed.error)}`);
    child = {
      name: stage,
      queueName: stage,
      data: parsed.data,
      opts: { jobId: stageJobId(runId, stage), failParentOnFailure: true },
      ...(child ? { children: [child] } : {}),
    };
  }
  return {
    name: 'pipeline.run',
    queueName: 'pipeline.run',
    data: STAGES['pipeline.run'].payload.parse({ runId, stages: [...stages] }),
    opts: { jobId: stageJobId(runId, 'pipeline.run') },
    ...(child ? { children: [child] } : {}),
  };
}
