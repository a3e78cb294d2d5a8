import { z } from 'zod';
import { stageJob } from './stage-kit';

/**
 * UFRM reward model training, stage 1 (general) or stage 2 (finance).
 * Registered worker, capability not in this build: payload and result only, no plan (so no run
 * includes it yet). Its parameters and builder join this file when the capability lands.
 */
export const RewardTrainPayload = stageJob({
  phase: z.enum(['general', 'finance']),
  pairsKey: z.string().min(1),
});
export const RewardTrainResult = z.object({ checkpointKey: z.string(), alignmentRate: z.number().min(0).max(1) });
