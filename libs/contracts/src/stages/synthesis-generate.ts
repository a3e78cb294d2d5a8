import { z } from 'zod';
import { stageJob } from './stage-kit';

/**
 * SFT data synthesis (SelfQA, Evol-Instruct, expert-seeded, multi-model ensemble).
 * Registered worker, capability not in this build: payload and result only, no plan (so no run
 * includes it yet). Its parameters and builder join this file when the capability lands.
 */
export const SynthesisGeneratePayload = stageJob({
  method: z.enum(['selfqa', 'evol-instruct', 'expert-seeded', 'ensemble']),
  seedsKey: z.string().min(1),
});
export const SynthesisGenerateResult = z.object({ samples: z.number().int().nonnegative(), datasetKey: z.string() });
