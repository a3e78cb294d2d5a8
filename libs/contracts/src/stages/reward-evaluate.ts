import { z } from 'zod';
import { defineStagePlan, stageJob } from './stage-kit';

/**
 * reward.evaluate: the alignment rate (share of held-out pairs with score(chosen) > score(rejected))
 * of every reward model bound, per subcategory, for the finance and the general set (the seed's two
 * tables, 三 RM评估), each with its pair count and 95% interval; models of one `variant` are seeds of
 * one method, reported as mean ± std. Writes `alignment.json`, `alignment.md` and `alignment.png`.
 */
export const RewardEvaluatePayload = stageJob({
  /** Held-out `PreferenceRecord` JSONL (reward.prepare's `test.jsonl`). */
  testKey: z.string().min(1),
  /** The reward.train instances to evaluate: instance id and the key of its committed manifest. */
  models: z.array(z.object({ instance: z.string().min(1), manifestKey: z.string().min(1) })).min(1),
});

const Summary = z.object({ mean: z.number(), std: z.number(), n: z.number().int() });
export const RewardEvaluateResult = z.object({
  pairs: z.number().int().nonnegative(),
  variants: z.array(
    z.object({
      name: z.string(),
      seeds: z.number().int().positive(),
      models: z.array(z.string()),
      overall: Summary,
      finance: Summary.nullable(),
      general: Summary.nullable(),
    }),
  ),
});

export const rewardEvaluatePlan = defineStagePlan({
  description: 'alignment rate per subcategory of the trained reward models on the held-out pairs (mean ± std over seeds, 95% intervals)',
  slots: {
    test: { description: 'held-out pairs (reward.prepare/test.jsonl)', artifact: 'test.jsonl' },
    models: { description: 'the reward.train instances to evaluate', many: true },
  },
  params: z.object({}).strict(),
  build: ({ runId, inputs }) => ({
    runId,
    testKey: inputs.one('test'),
    models: inputs.all('models').map(({ from, key }) => ({ instance: from, manifestKey: key })),
  }),
});
