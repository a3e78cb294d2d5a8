import { z } from 'zod';
import { defineStagePlan, param, stageJob } from './stage-kit';

/**
 * reward.pairs: preference pairs for the reward model, built (as the XuanYuan3 report does) from
 * responses of several models of different sizes under several sampling settings, labelled by
 * imported human labels, a verifiable check against a reference answer, or an LLM judge asked in
 * both orders; only confident pairs are kept. Writes `pretrain.jsonl` (general pairs) and
 * `finetune.jsonl` (finance pairs) as `PreferenceRecord` lines, with `samples.jsonl`,
 * `dropped.jsonl` and `summary.json` beside them (libs/preference-pairs).
 */
export const RewardPairsPayload = stageJob({
  /** JSONL `{id?, prompt, set?, category?, reference?}` per line. */
  promptsKey: z.string().min(1),
  /** JSON: sources, sampling settings, labellers (libs/preference-pairs `PairsConfig`). */
  configKey: z.string().min(1),
  /** JSONL `{prompt_id, chosen, rejected, margin?}`: human labels, which win over every other labeller. */
  humanLabelsKey: z.string().min(1).optional(),
  /** Overrides of the config's values. */
  seed: z.number().int().optional(),
  minMargin: z.number().min(0).max(1).optional(),
  samplesPerSetting: z.number().int().min(1).max(64).optional(),
  maxPairsPerPrompt: z.number().int().positive().optional(),
});

const Count = z.number().int().nonnegative();

export const RewardPairsResult = z.object({
  prompts: Count,
  samples: Count,
  responses: Count,
  candidatePairs: Count,
  kept: Count,
  /** Dropped pairs by reason (`judge-inconsistent`, `judge-below-margin`, `verifiable-both-wrong`, …). */
  dropped: z.record(z.string(), Count),
  perLabeller: z.record(z.string(), z.object({ labelled: Count, kept: Count, dropped: Count })),
  /** `source-a vs source-b`: candidate and kept pairs. */
  perModelPair: z.record(z.string(), z.object({ candidates: Count, kept: Count })),
  /** Kept pairs per collection: pretrain (general), finetune (finance). */
  collections: z.object({ pretrain: Count, finetune: Count }),
  humanLabelsUnmatched: Count.default(0),
  seed: z.number().int(),
  judgePromptVersion: z.string().optional(),
});

export const rewardPairsPlan = defineStagePlan({
  description: 'preference pairs from several models and sampling settings, labelled by humans, a verifiable check or an LLM judge in both orders',
  slots: {
    prompts: { description: 'prompts, JSONL {id?, prompt, set?, category?, reference?}', defaultInput: 'prompts.jsonl' },
    config: { description: 'sources, sampling settings and labellers, JSON (libs/preference-pairs PairsConfig)', defaultInput: 'reward-pairs.json' },
    human_labels: { description: 'human labels, JSONL {prompt_id, chosen, rejected, margin?}', defaultInput: 'human-labels.jsonl', optional: true },
  },
  params: z
    .object({ seed: z.coerce.number().int(), min_margin: param.ratio(), samples_per_setting: param.positiveInt(), max_pairs_per_prompt: param.positiveInt() })
    .partial()
    .strict(),
  paramPaths: { seed: 'seed', minMargin: 'min_margin', samplesPerSetting: 'samples_per_setting', maxPairsPerPrompt: 'max_pairs_per_prompt' },
  build: ({ runId, inputs, params }) => {
    const humanLabelsKey = inputs.maybe('human_labels');
    return {
      runId,
      promptsKey: inputs.one('prompts'),
      configKey: inputs.one('config'),
      ...(humanLabelsKey ? { humanLabelsKey } : {}),
      ...(params.seed !== undefined ? { seed: params.seed } : {}),
      ...(params.min_margin !== undefined ? { minMargin: params.min_margin } : {}),
      ...(params.samples_per_setting !== undefined ? { samplesPerSetting: params.samples_per_setting } : {}),
      ...(params.max_pairs_per_prompt !== undefined ? { maxPairsPerPrompt: params.max_pairs_per_prompt } : {}),
    };
  },
});
