import { z } from 'zod';
import { defineStagePlan, param, stageJob } from './stage-kit';

/**
 * rlhf.ci-filter (seed 五, 置信区间过滤): n responses per finance prompt from the SFT policy, scored
 * by UFRM; prompts whose score std is low, or whose mean is above or below the thresholds, are
 * dropped; the rest is drawn std-weighted keeping each subdomain's proportion. Commits
 * `prompts.jsonl` (the kept prompts), `ratios.json` (`{ratios, kl}`: the kept subdomain shares and
 * the first PPO round's KL), `history.json` (round 0 of the PEI loop), `ci-filter.json`/`.md` (every
 * prompt kept or dropped by a named rule, counts per subdomain), `ci-means.png`, `ci-stds.png` and
 * `rejects.jsonl` (input lines that are no prompt).
 */
const Threshold = z.union([z.object({ absolute: z.number() }).strict(), z.object({ quantile: z.number().min(0).max(1) }).strict()]);

export const RlhfCiFilterPayload = stageJob({
  policyManifestKey: z.string().min(1),
  rewardManifestKey: z.string().min(1),
  /** Prompts JSONL: `{prompt, subdomain, reference?}` or SFT chat lines `{messages, category}`. */
  promptsKey: z.string().min(1),
  /** Keep only subdomains starting with this (the seed filters finance prompts); empty: all. */
  subdomainPrefix: z.string().default('finance.'),
  samples: z.number().int().min(2).default(8),
  maxTokens: z.number().int().positive().default(32),
  temperature: z.number().positive().default(1),
  /** Rule 1 threshold on the score std: absolute, or a quantile of the prompts' stds. */
  minStd: Threshold.default({ quantile: 0.1 }),
  upper: Threshold.optional(),
  lower: Threshold.optional(),
  /** Share of the surviving prompts drawn (std-weighted, subdomain proportions kept). */
  keepFraction: z.number().gt(0).max(1).default(0.8),
  seed: z.number().int().nonnegative().default(1),
  /** The KL coefficient of the first PPO round (the PEI loop's PPO pretraining, a large KL). */
  klStart: z.number().nonnegative().default(0.1),
});

export const RlhfCiFilterResult = z.object({
  lines: z.number().int(),
  prompts: z.number().int(),
  rejected: z.number().int(),
  kept: z.number().int(),
  droppedByRule: z.record(z.string(), z.number().int()),
  bySubdomain: z.record(z.string(), z.record(z.string(), z.number())),
  ratios: z.record(z.string(), z.number()),
  kl: z.number(),
  thresholds: z.record(z.string(), z.unknown()),
});

const threshold = (absolute: number | undefined, quantile: number | undefined) => (absolute !== undefined ? { absolute } : quantile !== undefined ? { quantile } : undefined);

export const rlhfCiFilterPlan = defineStagePlan({
  description: 'confidence-interval filter of the finance prompts: n UFRM-scored samples each, low-std and out-of-range prompts dropped, a std-weighted sample kept',
  slots: {
    policy: { description: 'the SFT policy (e.g. sft)' },
    reward: { description: 'the UFRM reward model (e.g. reward.train#finetune-s1)' },
    prompts: { description: 'prompts JSONL (e.g. sft/train.jsonl)', artifact: 'train.jsonl' },
  },
  params: z
    .object({
      subdomain_prefix: z.string(),
      samples: param.positiveInt(),
      max_tokens: param.positiveInt(),
      temperature: z.coerce.number().positive(),
      min_std: z.coerce.number().nonnegative(),
      min_std_quantile: param.ratio(),
      upper: z.coerce.number(),
      upper_quantile: param.ratio(),
      lower: z.coerce.number(),
      lower_quantile: param.ratio(),
      keep_fraction: z.coerce.number().gt(0).max(1),
      seed: param.int(),
      kl_start: z.coerce.number().nonnegative(),
    })
    .partial()
    .strict(),
  paramPaths: { samples: 'samples', maxTokens: 'max_tokens', keepFraction: 'keep_fraction', klStart: 'kl_start' },
  build: ({ runId, inputs, params: p }) => {
    const minStd = threshold(p.min_std, p.min_std_quantile);
    const upper = threshold(p.upper, p.upper_quantile);
    const lower = threshold(p.lower, p.lower_quantile);
    return {
      runId,
      policyManifestKey: inputs.one('policy'),
      rewardManifestKey: inputs.one('reward'),
      promptsKey: inputs.one('prompts'),
      ...(p.subdomain_prefix !== undefined ? { subdomainPrefix: p.subdomain_prefix } : {}),
      ...(p.samples ? { samples: p.samples } : {}),
      ...(p.max_tokens ? { maxTokens: p.max_tokens } : {}),
      ...(p.temperature ? { temperature: p.temperature } : {}),
      ...(minStd ? { minStd } : {}),
      ...(upper ? { upper } : {}),
      ...(lower ? { lower } : {}),
      ...(p.keep_fraction ? { keepFraction: p.keep_fraction } : {}),
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
      ...(p.kl_start !== undefined ? { klStart: p.kl_start } : {}),
    };
  },
});
