import type { FlowJob } from 'bullmq';
import { STAGES, stageJobId, type PayloadOf, type StageName } from '@xyp/contracts';
import { describeIssues } from './stage-worker';

/** What a run starts from: the committed input corpus. */
export interface RunInputs {
  runId: string;
  /** Store key of the input JSONL. */
  inputKey: string;
}

/**
 * How each runnable stage's payload follows from the run's inputs. A stage missing here
 * has a registered worker but no capability yet, so a run cannot include it.
 */
const PAYLOAD_BUILDERS: { [S in Exclude<StageName, 'pipeline.run'>]?: (inputs: RunInputs) => PayloadOf<S> } = {
  'corpus.inspect': ({ runId, inputKey }) => ({ runId, inputKey }),
};

export const RUNNABLE_STAGES = Object.keys(PAYLOAD_BUILDERS) as StageName[];

/** A stage that a run cannot include (unknown, or not available in this build). */
export class UnplannableStageError extends Error {}

/**
 * A run as one BullMQ flow: the stages form a chain, each the child of the next, with
 * `pipeline.run` at the root. BullMQ runs children before parents, so the first stage
 * runs first and `pipeline.run` closes the run after the last. A child that fails for
 * good fails its parent (`failParentOnFailure`), so a broken stage stops the chain.
 * Every payload is built and validated here, before anything is enqueued.
 */
export function buildRunFlow(stages: readonly StageName[], inputs: RunInputs): FlowJob {
  const { runId } = inputs;
  let child: FlowJob | undefined;
  for (const stage of stages) {
    const builder = stage === 'pipeline.run' ? undefined : PAYLOAD_BUILDERS[stage];
    if (!builder) {
      throw new UnplannableStageError(`stage ${stage} cannot be part of a run in this build (runnable: ${RUNNABLE_STAGES.join(', ')})`);
    }
    const parsed = STAGES[stage].payload.safeParse((builder as (i: RunInputs) => unknown)(inputs));
    if (!parsed.success) throw new Error(`invalid ${stage} payload for run ${runId}: ${describeIssues(parsed.error)}`);
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
