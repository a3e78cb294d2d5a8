import { z } from 'zod';
import { stageJob } from './stage-kit';

/**
 * Continued pretraining on packed shards (trainer).
 * Registered worker, capability not in this build: payload and result only, no plan (so no run
 * includes it yet). Its parameters and builder join this file when the capability lands.
 */
export const CptPayload = stageJob({
  shardsStage: z.string().default('corpus.bucket'),
  steps: z.number().int().positive(),
});
export const CptResult = z.object({ checkpointKey: z.string(), finalLoss: z.number() });
