import { z } from 'zod';
import { StageDecision, defineStagePlan, param, stageJob } from './stage-kit';

/**
 * rlhf.improve (`rlhf.improve#round-k`, seed 四, 改进): tiers each subdomain's PPO gain (net win rate
 * against SFT) and UFRM alignment rate into good / mid / bad, moves its data ratio by the PEI grid,
 * renormalises, lowers the KL, and decides: another round unless no ratio moved by more than
 * `epsilon`, no subdomain gained, or `maxRounds` is reached. Commits `ratios.json` (`{ratios, kl}`
 * for the next round), `history.json` (every round so far), `improve.json`/`.md` and
 * `ratios.png`, `gains.png`.
 */
const Tiers = z.union([
  z.object({ mode: z.literal('quantile'), low: z.number().min(0).max(1).default(1 / 3), high: z.number().min(0).max(1).default(2 / 3) }).strict(),
  z.object({ mode: z.literal('fixed'), bad: z.number(), good: z.number() }).strict(),
]);

export const RlhfImprovePayload = stageJob({
  evaluationKey: z.string().min(1),
  ratiosKey: z.string().min(1),
  alignmentKey: z.string().min(1),
  historyKey: z.string().min(1),
  /** Which reward.evaluate variant's alignment rates tier the RM axis. */
  alignmentVariant: z.string().min(1).default('ufrm'),
  maxRounds: z.number().int().positive().default(3),
  ppoTiers: Tiers.default({ mode: 'fixed', bad: -0.05, good: 0.05 }),
  rmTiers: Tiers.default({ mode: 'quantile', low: 1 / 3, high: 2 / 3 }),
  up: z.number().min(1).default(1.25),
  upUp: z.number().min(1).default(1.5),
  down: z.number().gt(0).max(1).default(0.8),
  downDown: z.number().gt(0).max(1).default(0.6),
  minRatio: z.number().min(0).lt(1).default(0.01),
  klFactor: z.number().gt(0).max(1).default(0.5),
  klMin: z.number().min(0).default(0.005),
  epsilon: z.number().min(0).default(0.01),
});

export const RlhfImproveResult = z.object({
  round: z.number().int(),
  ratios: z.record(z.string(), z.number()),
  kl: z.number(),
  moves: z.array(z.object({ subdomain: z.string(), ppoTier: z.string(), rmTier: z.string(), action: z.string(), before: z.number(), after: z.number() })),
  decision: StageDecision,
});

export const rlhfImprovePlan = defineStagePlan({
  description: 'the PEI grid over PPO gain × RM alignment moves each subdomain\'s data ratio; the KL is lowered; decides another round',
  slots: {
    evaluation: { description: 'the round\'s rlhf.evaluate', artifact: 'evaluation.json' },
    ratios: { description: 'the ratios and KL the round trained with (rlhf.ppo/ratios.json)', artifact: 'ratios.json' },
    alignment: { description: 'UFRM alignment per subcategory (reward.evaluate/alignment.json)', artifact: 'alignment.json' },
    history: { description: 'the loop so far (previous/history.json; round 1: rlhf.ci-filter/history.json)', artifact: 'history.json' },
  },
  params: z
    .object({
      alignment_variant: z.string().min(1),
      max_rounds: param.positiveInt(),
      ppo_good: z.coerce.number(),
      ppo_bad: z.coerce.number(),
      rm_low_quantile: param.ratio(),
      rm_high_quantile: param.ratio(),
      up: z.coerce.number().min(1),
      up_up: z.coerce.number().min(1),
      down: z.coerce.number().gt(0).max(1),
      down_down: z.coerce.number().gt(0).max(1),
      min_ratio: z.coerce.number().min(0).lt(1),
      kl_factor: z.coerce.number().gt(0).max(1),
      kl_min: z.coerce.number().min(0),
      epsilon: z.coerce.number().min(0),
    })
    .partial()
    .strict(),
  paramPaths: { maxRounds: 'max_rounds', klFactor: 'kl_factor', epsilon: 'epsilon' },
  decides: true,
  build: ({ runId, inputs, params: p }) => ({
    runId,
    evaluationKey: inputs.one('evaluation'),
    ratiosKey: inputs.one('ratios'),
    alignmentKey: inputs.one('alignment'),
    historyKey: inputs.one('history'),
    ...(p.alignment_variant ? { alignmentVariant: p.alignment_variant } : {}),
    ...(p.max_rounds ? { maxRounds: p.max_rounds } : {}),
    ...(p.ppo_good !== undefined || p.ppo_bad !== undefined ? { ppoTiers: { mode: 'fixed' as const, bad: p.ppo_bad ?? -0.05, good: p.ppo_good ?? 0.05 } } : {}),
    ...(p.rm_low_quantile !== undefined || p.rm_high_quantile !== undefined ? { rmTiers: { mode: 'quantile' as const, low: p.rm_low_quantile ?? 1 / 3, high: p.rm_high_quantile ?? 2 / 3 } } : {}),
    ...(p.up ? { up: p.up } : {}),
    ...(p.up_up ? { upUp: p.up_up } : {}),
    ...(p.down ? { down: p.down } : {}),
    ...(p.down_down ? { downDown: p.down_down } : {}),
    ...(p.min_ratio !== undefined ? { minRatio: p.min_ratio } : {}),
    ...(p.kl_factor ? { klFactor: p.kl_factor } : {}),
    ...(p.kl_min !== undefined ? { klMin: p.kl_min } : {}),
    ...(p.epsilon !== undefined ? { epsilon: p.epsilon } : {}),
  }),
});
