import type { BackendOptions } from '@xyp/engine';
import type { JobControl, ResumeMarker } from '@xyp/local-engine';
import type { StageContext } from '@xyp/queue';

/** The engine backend the trainer's stages train and evaluate on (`engineBackendOptions` of the app's env). */
export const TRAINER_ENGINE_BACKEND = Symbol('TRAINER_ENGINE_BACKEND');
export type TrainerEngineBackend = BackendOptions;

/**
 * A spec, data or mixture-config problem does not go away on retry: such errors name a spec path or
 * a `file:line`, or are the mixture controller's own (`MixtureInputError`).
 */
export function isInputError(error: unknown): error is Error {
  return error instanceof Error && (error.name === 'MixtureInputError' || /spec: |:\d+: |CPT mixture: |SFT ratios: |shards /.test(error.message));
}

/** Seconds between resume checkpoints of a training stage. */
export const CHECKPOINT_EVERY_SECONDS = 30;

/**
 * The engine's job control for a training stage: cancel and progress through the stage context, a
 * resume checkpoint every `CHECKPOINT_EVERY_SECONDS` kept on the BullMQ job, and — on a retry after
 * a crash, or a stalled job taken over by another worker — the last one to go on from.
 */
export function resumable(context: StageContext): JobControl {
  return {
    signal: context.signal,
    onProgress: (p) => context.progress(p.done, p.total, 'steps', p.message),
    resume: context.resumeCheckpoint as ResumeMarker | undefined,
    checkpointEverySeconds: CHECKPOINT_EVERY_SECONDS,
    onCheckpoint: async (marker) => {
      await context.keepCheckpoint(marker);
      context.log(`resume checkpoint at step ${marker.step}/${marker.totalSteps}`);
    },
  };
}
