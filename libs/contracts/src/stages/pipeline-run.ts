import { z } from 'zod';
import { RunId } from '../ids';
import { JobTrace, stageJob } from './stage-kit';

/**
 * pipeline.run: the control plane's own queue. Two kinds of job live on it:
 *  - `pipeline.step` (one per stage instance, the parent of that instance's stage job): runs when
 *    the instance has committed and plans what follows (dependants whose inputs are now
 *    committed, the next loop round), idempotently;
 *  - `pipeline.run` (one per run, added once every instance has committed and every loop ended):
 *    gathers every instance's result into the run report and completes the run.
 */
export const PipelineRunPayload = stageJob({
  /** The run's stage instances, in plan order. */
  stages: z.array(z.string()).min(1),
});
export const PipelineRunResult = z.object({
  /** Store keys of the report: JSON, Markdown and self-contained HTML. */
  reportKey: z.string(),
  markdownKey: z.string().default(''),
  htmlKey: z.string().default(''),
  /** Each instance's result, by instance id. */
  stages: z.record(z.string(), z.record(z.string(), z.unknown())),
});

/** The job name of a planning step on the pipeline.run queue. */
export const PIPELINE_STEP_JOB = 'pipeline.step';

/** A planning step: after `after` (an instance id, or `start` for the run's first step) committed. */
export const PipelineStepPayload = z.object({ runId: RunId, after: z.string().min(1), trace: JobTrace.optional() }).strict();
export const PipelineStepResult = z.object({
  /** Instances this step added to the queues (none when an earlier try or another step did). */
  queued: z.array(z.string()),
  /** Whether the run was complete, so the run closer was added. */
  done: z.boolean(),
});

/** Job id of the planning step after an instance: `<runId>.pipeline.step.<instance id>` (deterministic, so it is added once). */
export function pipelineStepJobId(runId: string, after: string): string {
  return `${runId}.pipeline.step.${after}`;
}
