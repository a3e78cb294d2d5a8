import type { BackendOptions } from '@xyp/engine';

/** The engine backend the reward stages train and score on (`engineBackendOptions` of the app's env). */
export const REWARD_ENGINE_BACKEND = Symbol('REWARD_ENGINE_BACKEND');
export type RewardEngineBackend = BackendOptions;

/** The cluster engine (`ClusterTraining` of `@xyp/kube`) when `XYP_TRAINING_ENGINE=cluster`, else null: reward.train then runs locally. */
export const REWARD_CLUSTER = Symbol('REWARD_CLUSTER');
