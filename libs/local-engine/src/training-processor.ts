/**
 * A BullMQ processor that runs `LocalEngine` training jobs in a worker thread (`runJobInThread` of
 * `@xyp/offload`), so the worker's event loop renews the job's lock, stores progress, hears cancels
 * and shuts down cleanly however long the job trains. The job's data is `{kind, spec}`; the step
 * marker the thread records (its last resume checkpoint) is kept on the job, and a later attempt
 * resumes from it. The processor commits the checkpoint's manifest after the thread returns: a
 * cancelled or handed-back job commits nothing.
 */
import type { Job } from 'bullmq';
import { z } from 'zod';
import { CausalLmSpec, PpoSpec, RewardModelSpec, SftSpec, type EngineJob, type JobKind } from '@xyp/contracts';
import type { BackendOptions } from '@xyp/engine';
import { runJobInThread, withoutStepMarker, type ClosingWorker } from '@xyp/offload';
import type { ArtifactStore, ArtifactStoreOptions } from '@xyp/storage';
import type { JobProgress, ResumeMarker } from './job-control';
import { TRAINING_JOB_TASK, type TrainingJobInput } from './thread-task';

/** The data of a training job. */
export const TrainingJobData = z.object({
  kind: z.enum(['causal-lm', 'sft', 'reward-model', 'ppo']),
  spec: z.record(z.string(), z.unknown()),
});
export type TrainingJobData = z.infer<typeof TrainingJobData>;

const SPECS: Record<JobKind, z.ZodType<{ runId: string; stage: string }>> = {
  'causal-lm': CausalLmSpec,
  sft: SftSpec,
  'reward-model': RewardModelSpec,
  ppo: PpoSpec,
};

/** What a training job returns. */
export interface TrainingJobResult {
  checkpoint: string;
  metrics: Record<string, number>;
  /** False when an earlier attempt had committed the checkpoint already (nothing was trained). */
  committed: boolean;
}

export interface TrainingProcessorOptions {
  /** The store the processor commits to. */
  store: ArtifactStore;
  /** The same store as options: the thread opens its own. */
  storeOptions: ArtifactStoreOptions;
  backend?: BackendOptions;
  /** The worker the processor runs on (its closing drains the thread); a getter, as it is built after the processor. */
  worker?: () => ClosingWorker | undefined;
  checkpointEverySteps?: number;
  checkpointEverySeconds?: number;
  /** Stored progress at most this often (default 1000 ms). */
  progressIntervalMs?: number;
  /** Polled while a job runs; truthy cancels it (e.g. its run was cancelled). */
  isCancelled?: (job: Job) => Promise<boolean | string>;
  /** Every progress report of the thread, unthrottled. */
  onProgress?: (job: Job, progress: JobProgress) => void;
  onLog?: (job: Job, line: string) => void;
  /** PPO: score rollouts through `RewardService.Score` at this address. */
  rewardService?: TrainingJobInput['rewardService'];
}

/** `(job, token, signal) => result`: pass it to `new Worker(queue, processor, …)`. */
export function trainingJobProcessor(options: TrainingProcessorOptions): (job: Job, token?: string, signal?: AbortSignal) => Promise<TrainingJobResult> {
  return async (job, token, signal) => {
    const parsed = TrainingJobData.safeParse(withoutStepMarker(job.data));
    if (!parsed.success) throw new Error(`training job ${job.id}: ${parsed.error.issues[0]?.path.join('.') || 'data'}: ${parsed.error.issues[0]?.message}`);
    const { kind, spec } = parsed.data;
    const at = SPECS[kind].safeParse(spec);
    if (!at.success) throw new Error(`training job ${job.id}: ${kind} spec: ${at.error.issues[0]?.path.join('.')}: ${at.error.issues[0]?.message}`);
    const done = await options.store.readManifest(at.data.runId, at.data.stage);
    if (done) return { checkpoint: `${at.data.runId}/${at.data.stage}`, metrics: (done.result.metrics ?? {}) as Record<string, number>, committed: false };
    const result = await runJobInThread<TrainingJobInput, EngineJob, JobProgress, ResumeMarker>(job, token, {
      task: TRAINING_JOB_TASK,
      input: (resume) => ({
        kind,
        spec: spec as TrainingJobInput['spec'],
        store: options.storeOptions,
        backend: options.backend,
        resume,
        checkpointEverySteps: options.checkpointEverySteps,
        checkpointEverySeconds: options.checkpointEverySeconds,
        rewardService: options.rewardService,
      }),
      signal,
      worker: options.worker?.(),
      isCancelled: options.isCancelled ? () => (options.isCancelled as (job: Job) => Promise<boolean | string>)(job) : undefined,
      progressIntervalMs: options.progressIntervalMs,
      onProgress: options.onProgress ? (p) => options.onProgress?.(job, p) : undefined,
      onLog: options.onLog ? (line) => options.onLog?.(job, line) : undefined,
    });
    if (result.engine !== 'local') throw new Error(`training job ${job.id}: expected a local engine job`);
    const { committed } = await options.store.commitManifest(result.manifest);
    return { checkpoint: result.checkpoint, metrics: result.metrics, committed };
  };
}
