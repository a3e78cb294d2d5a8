import type { BackendOptions } from '@xyp/engine';

/** The engine backend the rlhf stages sample, train and score on (`engineBackendOptions` of the app's env). */
export const RLHF_ENGINE_BACKEND = Symbol('RLHF_ENGINE_BACKEND');
export type RlhfEngineBackend = BackendOptions;

/** The cluster engine (`ClusterTraining` of `@xyp/kube`) when `XYP_TRAINING_ENGINE=cluster`, else null: rlhf.ppo then runs locally. */
export const RLHF_CLUSTER = Symbol('RLHF_CLUSTER');

/** Input problems (a spec path, a `file:line`, the algorithms' own `RlhfInputError`) do not go away on retry. */
export function isInputError(error: unknown): error is Error {
  return error instanceof Error && (error.name === 'RlhfInputError' || /spec: |:\d+: |rlhf\.[a-z-]+: /.test(error.message));
}
