import { z } from 'zod';
import { TERMINAL_RUN_STATUSES, instanceId, partsOf, type StageName } from '@xyp/contracts';
import type { StageRuntime } from './stage-runtime';

const StalledJobData = z.object({ runId: z.string(), instance: z.string().optional(), partIndex: z.number().int().optional(), partCount: z.number().int().optional() });

/**
 * Marks a stalled job in its run's events. BullMQ's stalled-job check (any worker of the
 * queue, every `stalledInterval`) found the job active with its lock expired — the worker
 * that held it died or hung — and moved it back to wait, where the next free worker takes
 * it over: a `stage-retrying` event says so (`xyp run watch` prints it). A job that
 * stalled more than `maxStalledCount` times is failed by BullMQ without running again,
 * so the stage and the run are failed here, as a stage worker does for a final failure.
 */
export async function announceStalledJob(runtime: StageRuntime, stage: StageName, jobId: string, maxStalledCount: number): Promise<void> {
  const job = await runtime.producer.queue(stage).getJob(jobId);
  if (!job) return;
  const data = StalledJobData.safeParse(job.data);
  if (!data.success) return;
  const { runId, partIndex, partCount, instance = '' } = data.data;
  const run = await runtime.registry.get(runId);
  if (!run || TERMINAL_RUN_STATUSES.has(run.status)) return;
  const ref = instanceId(stage, instance);
  const what = job.name === partsOf(stage)?.jobName && partIndex !== undefined ? `${ref} part ${partIndex + 1}/${partCount}` : ref;
  const attempt = job.attemptsMade + 1;
  const why = `job ${jobId} stalled: its worker stopped renewing the lock (killed or hung)`;
  if (job.deferredFailure) {
    const message = `${why}, ${job.stalledCounter} times (at most ${maxStalledCount}); failed`;
    await runtime.events.publish({ runId, type: 'stage-failed', stage, instance, attempt, message });
    await runtime.endRun(runId, 'failed', { error: `${what}: ${message}`, stage });
    return;
  }
  const message = `${why}; back in the queue, taken over by the next free worker (stall ${job.stalledCounter} of at most ${maxStalledCount})`;
  await runtime.events.publish({ runId, type: 'stage-retrying', stage, instance, attempt, message });
}
