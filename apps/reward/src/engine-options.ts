import type { BackendOptions } from '@xyp/engine';

/** The engine backend the reward stages train and score on (`engineBackendOptions` of the app's env). */
export const REWARD_ENGINE_BACKEND = Symbol('REWARD_ENGINE_BACKEND');
export type RewardEngineBackend = BackendOptions;
