import type { BackendOptions } from '@xyp/engine';
import { stageJobControl, type JobControl } from '@xyp/local-engine';
import type { StageContext } from '@xyp/queue';

/** The engine backend the trainer's stages train and evaluate on (`engineBackendOptions` of the app's env). */
export const TRAINER_ENGINE_BACKEND = Symbol('TRAINER_ENGINE_BACKEND');
export type TrainerEngineBackend = BackendOptions;

/** The cluster engine (`ClusterTraining` of `@xyp/kube`) when `XYP_TRAINING_ENGINE=cluster`, else null: cpt and sft then run locally. */
export const TRAINER_CLUSTER = Symbol('TRAINER_CLUSTER');

/**
 * A spec, data or mixture-config problem does not go away on retry: such errors name a spec path or
 * a `file:line`, or are the mixture controller's own (`MixtureInputError`).
 */
export function isInputError(error: unknown): error is Error {
  return error instanceof Error && (error.name === 'MixtureInputError' || /spec: |:\d+: |CPT mixture: |SFT ratios: |shards /.test(error.message));
}

/** Seconds between resume checkpoints of a training stage. */
export const CHECKPOINT_EVERY_SECONDS = 30;

/** The engine's job control for a training stage (`stageJobControl`): resume checkpoints every 30 s. */
export function resumable(context: StageContext): JobControl {
  return stageJobControl(context, CHECKPOINT_EVERY_SECONDS);
}
