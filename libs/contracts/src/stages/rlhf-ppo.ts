import { z } from 'zod';
import { stageJob } from './stage-kit';

/**
 * One PPO round of PEI-RLHF with the KL coefficient the improve step chose.
 * Registered worker, capability not in this build: payload and result only, no plan (so no run
 * includes it yet). Its parameters and builder join this file when the capability lands.
 */
export const RlhfPpoPayload = stageJob({
  round: z.number().int().nonnegative(),
  klCoefficient: z.number().positive(),
  promptsKey: z.string().min(1),
});
export const RlhfPpoResult = z.object({ checkpointKey: z.string(), meanReward: z.number(), meanKl: z.number() });
