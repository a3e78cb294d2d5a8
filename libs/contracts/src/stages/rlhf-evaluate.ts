import { z } from 'zod';
import { defineStagePlan, param, stageJob } from './stage-kit';

/**
 * rlhf.evaluate (`rlhf.evaluate#round-k`, seed 四, 评估): the round's policy against the SFT model
 * on held-out prompts, per subdomain: pairwise verdicts in both orders (a verdict that flips is a
 * tie), win / tie / loss and the net win rate (W − L)/N; the mean UFRM score of both models'
 * responses; the policy's KL to the reference on its own responses. The judge on one machine is
 * the reference judge (closer to the sample's reference answer; independent of UFRM); annotators'
 * verdicts (`human`, JSONL `{id, verdict}`) take precedence. Commits `evaluation.json`/`.md`,
 * `pairs.csv` and `pairs.jsonl` (for annotators) and `win-tie-loss.png`.
 */
export const RlhfEvaluatePayload = stageJob({
  policyManifestKey: z.string().min(1),
  baselineManifestKey: z.string().min(1),
  rewardManifestKey: z.string().min(1),
  /** Held-out prompts with reference answers (e.g. sft/held-out.jsonl). */
  promptsKey: z.string().min(1),
  humanKey: z.string().min(1).optional(),
  subdomainPrefix: z.string().default('finance.'),
  maxTokens: z.number().int().positive().default(48),
  /** 0: greedy. */
  temperature: z.number().min(0).default(0),
  /** The reference judge's tie band on the difference of character-bigram F1. */
  tieMargin: z.number().min(0).max(1).default(0.02),
  /**
   * `reference`: the reference judge (one machine, no model). `llm`: MT-Bench's pairwise judge over an
   * OpenAI-compatible endpoint (`judgeBaseUrl`, `judgeModel`, the API key from the environment
   * variable `judgeApiKeyEnv`, never logged).
   */
  judge: z.enum(['reference', 'llm']).default('reference'),
  judgeBaseUrl: z.string().url().optional(),
  judgeModel: z.string().min(1).optional(),
  judgeApiKeyEnv: z.string().min(1).optional(),
  /** The KL bound (nats per response, policy vs reference, on the policy's own responses) the round must stay under. */
  maxKl: z.number().positive().default(5),
  /**
   * The KL is estimated on responses sampled from the policy at temperature 1, `klSamples` per
   * prompt of up to `klMaxTokens` tokens (the PPO rollouts' length by default): the mean over them
   * of Σ_t log π(y_t) − log π_ref(y_t) is an unbiased estimate of KL(π ‖ π_ref) per response, which a
   * greedy response's log-ratio is not.
   */
  klSamples: z.number().int().positive().default(4),
  klMaxTokens: z.number().int().positive().default(32),
  seed: z.number().int().nonnegative().default(1),
});

const Figures = z.object({ win: z.number(), tie: z.number(), loss: z.number(), skip: z.number(), n: z.number(), netWinRate: z.number().nullable(), policyScore: z.number(), baselineScore: z.number(), scoreGain: z.number(), kl: z.number(), klPerToken: z.number(), pairs: z.number() });
export const RlhfEvaluateResult = z.object({ judge: z.string(), prompts: z.number().int(), overall: Figures, bySubdomain: z.record(z.string(), Figures), maxKl: z.number(), klWithinBound: z.boolean() });

export const rlhfEvaluatePlan = defineStagePlan({
  description: 'the round\'s policy against the SFT model per subdomain: win/tie/loss (both orders), UFRM score gain, KL',
  slots: {
    policy: { description: 'the round\'s policy (rlhf.ppo of the round)' },
    baseline: { description: 'the SFT model' },
    reward: { description: 'the UFRM reward model, for the mean scores' },
    prompts: { description: 'held-out prompts with reference answers (e.g. sft/held-out.jsonl)', artifact: 'held-out.jsonl' },
    human: { description: 'annotators\' verdicts, JSONL {id, verdict: win|tie|loss}', optional: true },
  },
  params: z
    .object({ subdomain_prefix: z.string(), max_tokens: param.positiveInt(), temperature: z.coerce.number().min(0), tie_margin: z.coerce.number().min(0).max(1), max_kl: z.coerce.number().positive(), kl_samples: param.positiveInt(), kl_max_tokens: param.positiveInt(), seed: param.int(), judge: z.enum(['reference', 'llm']), judge_base_url: z.string().url(), judge_model: z.string().min(1), judge_api_key_env: z.string().min(1) })
    .partial()
    .strict(),
  paramPaths: { maxTokens: 'max_tokens', tieMargin: 'tie_margin', klSamples: 'kl_samples', klMaxTokens: 'kl_max_tokens' },
  build: ({ runId, inputs, params: p }) => {
    const humanKey = inputs.maybe('human');
    return {
      runId,
      policyManifestKey: inputs.one('policy'),
      baselineManifestKey: inputs.one('baseline'),
      rewardManifestKey: inputs.one('reward'),
      promptsKey: inputs.one('prompts'),
      ...(humanKey ? { humanKey } : {}),
      ...(p.subdomain_prefix !== undefined ? { subdomainPrefix: p.subdomain_prefix } : {}),
      ...(p.max_tokens ? { maxTokens: p.max_tokens } : {}),
      ...(p.temperature !== undefined ? { temperature: p.temperature } : {}),
      ...(p.tie_margin !== undefined ? { tieMargin: p.tie_margin } : {}),
      ...(p.max_kl !== undefined ? { maxKl: p.max_kl } : {}),
      ...(p.kl_samples ? { klSamples: p.kl_samples } : {}),
      ...(p.kl_max_tokens ? { klMaxTokens: p.kl_max_tokens } : {}),
      ...(p.judge ? { judge: p.judge } : {}),
      ...(p.judge_base_url ? { judgeBaseUrl: p.judge_base_url } : {}),
      ...(p.judge_model ? { judgeModel: p.judge_model } : {}),
      ...(p.judge_api_key_env ? { judgeApiKeyEnv: p.judge_api_key_env } : {}),
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
    };
  },
});
