import type { FlowJob } from 'bullmq';
import { STAGES, stageJobId, type PayloadOf, type StageName } from '@xyp/contracts';
import { describeIssues } from './stage-worker';

export type StagePayloads = { [S in StageName]?: PayloadOf<S> };

/**
 * A run as one BullMQ flow: the stages form a chain, each the child of the next, with
 * `pipeline.run` at the root. BullMQ runs children before parents, so the first stage
 * runs first and `pipeline.run` closes the run after the last. A child that fails for
 * good fails its parent (`failParentOnFailure`), so a broken stage stops the chain.
 */
export function buildRunFlow(runId: string, stages: readonly StageName[], payloads: StagePayloads): FlowJob {
  let child: FlowJob | undefined;
  for (const stage of stages) {
    const parsed = STAGES[stage].payload.safeParse(payloads[stage]);
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
