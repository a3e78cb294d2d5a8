import { z } from 'zod';
import { PreferenceSet } from '../preferences';
import { defineStagePlan, param, stageJob } from './stage-kit';

/**
 * reward.prepare: preference files in any common layout (TRL/OpenRLHF `{prompt, chosen, rejected}`,
 * HH-RLHF dialogues, message lists with a shared prefix) → validated, de-duplicated
 * `PreferenceRecord` collections split by a hash of the prompt: `pretrain.jsonl` and
 * `finetune.jsonl` (the UFRM phases' training pairs), `train.jsonl` (both, for a one-phase
 * baseline), `test.jsonl` (held out, never trained on), `rejects.jsonl` (line, reason) and
 * `summary.json` (counts).
 */
export const RewardPrepareInput = z.object({ name: z.string().min(1), key: z.string().min(1) });

export const RewardPrepareConfig = z
  .object({
    /** Share of prompts held out (by a hash of the prompt: no prompt on both sides). */
    testFraction: z.number().min(0).max(0.9).default(0.2),
    /** Salt of the split hash. */
    seed: z.number().int().nonnegative().default(0),
    /** For pairs that name no set and no known subcategory. */
    defaultSet: PreferenceSet.default('general'),
    defaultCategory: z.string().min(1).optional(),
    /** Estimated Jaccard similarity at or above which a pair is a near duplicate of an earlier one. */
    nearDuplicateThreshold: z.number().min(0.5).max(1).default(0.9),
    /** Fail the stage (rejects kept) when more than this share of lines is rejected. */
    maxRejectRatio: z.number().min(0).max(1).default(0.5),
  })
  .strict();
export type RewardPrepareConfig = z.output<typeof RewardPrepareConfig>;

export const RewardPreparePayload = stageJob({
  inputs: z.array(RewardPrepareInput).min(1),
  config: RewardPrepareConfig.default(RewardPrepareConfig.parse({})),
});

const Counts = z.record(z.string(), z.number().int().nonnegative());
export const RewardPrepareResult = z.object({
  lines: z.number().int().nonnegative(),
  accepted: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  rejectedByReason: Counts,
  duplicates: z.object({ exact: z.number().int().nonnegative(), near: z.number().int().nonnegative() }),
  train: z.number().int().nonnegative(),
  test: z.number().int().nonnegative(),
  /** Training pairs per collection (`pretrain`, `finetune`). */
  byPhase: Counts,
  /** Held-out pairs per subcategory. */
  testByCategory: Counts,
});

export const rewardPreparePlan = defineStagePlan({
  description: 'preference files → validated, de-duplicated pairs split by prompt hash into the UFRM phases and a held-out test set',
  slots: { preferences: { description: 'preference JSONL files (TRL, OpenRLHF, HH-RLHF or message-list layout)', defaultInput: 'preferences.jsonl', many: true } },
  params: z
    .object({
      test_fraction: z.coerce.number().min(0).max(0.9),
      seed: param.int(),
      default_set: PreferenceSet,
      default_category: z.string().min(1),
      near_duplicate_threshold: z.coerce.number().min(0.5).max(1),
      max_reject_ratio: param.ratio(),
    })
    .partial()
    .strict(),
  paramPaths: {
    'config.testFraction': 'test_fraction',
    'config.seed': 'seed',
    'config.defaultSet': 'default_set',
    'config.defaultCategory': 'default_category',
    'config.nearDuplicateThreshold': 'near_duplicate_threshold',
    'config.maxRejectRatio': 'max_reject_ratio',
  },
  build: ({ runId, inputs, params }) => ({
    runId,
    inputs: inputs.all('preferences').map(({ from, key }) => ({ name: from === 'input' ? key.split('/').pop() ?? key : from, key })),
    config: {
      ...(params.test_fraction !== undefined ? { testFraction: params.test_fraction } : {}),
      ...(params.seed !== undefined ? { seed: params.seed } : {}),
      ...(params.default_set ? { defaultSet: params.default_set } : {}),
      ...(params.default_category ? { defaultCategory: params.default_category } : {}),
      ...(params.near_duplicate_threshold !== undefined ? { nearDuplicateThreshold: params.near_duplicate_threshold } : {}),
      ...(params.max_reject_ratio !== undefined ? { maxRejectRatio: params.max_reject_ratio } : {}),
    },
  }),
});
