import { z } from 'zod';
import { defineStagePlan, param, stageJob } from './stage-kit';

/**
 * rlhf.ppo (a PEI-RLHF round's PPO, `rlhf.ppo#round-k`): PPO from the bound policy (round 1: the
 * SFT model; later: the round before) against the reference (SFT) and the UFRM reward model, on the
 * filtered prompts drawn by the round's subdomain ratios, with the round's KL coefficient (both from
 * `ratios.json`: the CI filter's for round 1, the improve step's after). Commits the checkpoint
 * (`<runId>/rlhf.ppo#round-k`), `ratios.json` (what it trained with), `ppo-log.jsonl` (per PPO
 * round: mean reward, KL, entropy, clip fraction, value loss, response length) and `ppo.png`.
 */
export const RlhfPpoPayload = stageJob({
  policyManifestKey: z.string().min(1),
  referenceManifestKey: z.string().min(1),
  rewardManifestKey: z.string().min(1),
  promptsKey: z.string().min(1),
  /** `{ratios: {subdomain: share}, kl}`. */
  ratiosKey: z.string().min(1),
  /** PPO rounds (rollout, then updates) in this stage instance. */
  rounds: z.number().int().positive().default(6),
  promptsPerRound: z.number().int().positive().default(8),
  samplesPerPrompt: z.number().int().positive().default(4),
  maxTokens: z.number().int().positive().default(32),
  lr: z.number().positive().default(2e-4),
  epochs: z.number().int().positive().default(1),
  klEstimator: z.enum(['k1', 'k3']).default('k1'),
  /**
   * The KL bound, nats per response (`PpoSpec.maxKl`; the same default as rlhf.evaluate's `maxKl`):
   * PPO stops at the last round whose rollouts were within it.
   */
  maxKl: z.number().positive().default(5),
  temperature: z.number().positive().default(1),
  seed: z.number().int().nonnegative().default(1),
});

export const RlhfPpoResult = z.looseObject({
  kind: z.literal('xyp-engine-checkpoint'),
  files: z.array(z.string()),
  checkpoint: z.string(),
  metrics: z.record(z.string(), z.number()),
  ratios: z.record(z.string(), z.number()),
  kl: z.number(),
  draws: z.record(z.string(), z.number()),
});

export const rlhfPpoPlan = defineStagePlan({
  description: 'a PEI round\'s PPO: the filtered prompts drawn by the round\'s subdomain ratios, reward = UFRM − KL·β',
  slots: {
    policy: { description: 'the policy to improve (round 1: sft; later: the round before)' },
    reference: { description: 'the frozen reference policy for the KL (sft)' },
    reward: { description: 'the UFRM reward model' },
    prompts: { description: 'the filtered prompts (rlhf.ci-filter/prompts.jsonl)', artifact: 'prompts.jsonl' },
    ratios: { description: 'the round\'s subdomain ratios and KL ({ratios, kl})', artifact: 'ratios.json' },
  },
  params: z
    .object({
      rounds: param.positiveInt(),
      prompts_per_round: param.positiveInt(),
      samples_per_prompt: param.positiveInt(),
      max_tokens: param.positiveInt(),
      lr: z.coerce.number().positive(),
      epochs: param.positiveInt(),
      kl_estimator: z.enum(['k1', 'k3']),
      max_kl: z.coerce.number().positive(),
      temperature: z.coerce.number().positive(),
      seed: param.int(),
    })
    .partial()
    .strict(),
  paramPaths: { rounds: 'rounds', promptsPerRound: 'prompts_per_round', samplesPerPrompt: 'samples_per_prompt', maxTokens: 'max_tokens', klEstimator: 'kl_estimator', maxKl: 'max_kl' },
  build: ({ runId, inputs, params: p }) => ({
    runId,
    policyManifestKey: inputs.one('policy'),
    referenceManifestKey: inputs.one('reference'),
    rewardManifestKey: inputs.one('reward'),
    promptsKey: inputs.one('prompts'),
    ratiosKey: inputs.one('ratios'),
    ...(p.rounds ? { rounds: p.rounds } : {}),
    ...(p.prompts_per_round ? { promptsPerRound: p.prompts_per_round } : {}),
    ...(p.samples_per_prompt ? { samplesPerPrompt: p.samples_per_prompt } : {}),
    ...(p.max_tokens ? { maxTokens: p.max_tokens } : {}),
    ...(p.lr ? { lr: p.lr } : {}),
    ...(p.epochs ? { epochs: p.epochs } : {}),
    ...(p.kl_estimator ? { klEstimator: p.kl_estimator } : {}),
    ...(p.max_kl ? { maxKl: p.max_kl } : {}),
    ...(p.temperature ? { temperature: p.temperature } : {}),
    ...(p.seed !== undefined ? { seed: p.seed } : {}),
  }),
});
