import { z } from 'zod';
import { StageDecision, defineStagePlan, param, stageJob } from './stage-kit';

/**
 * corpus.mix: the dynamic data mixture — next-stage sampling weights (or next-epoch SFT ratios)
 * from per-category loss reports, moving share from fast-converging to slow categories. It
 * decides, so it can end a loop: its result says stop once no weight moved by `stopBelow` or more.
 */
export const CorpusMixPayload = stageJob({
  /** JSONL `{step, category, loss, tokens?}` per line. */
  lossesKey: z.string().min(1),
  /** JSON `{category: weight}`: a run input, or the `weights.json` an earlier corpus.mix committed. */
  weightsKey: z.string().min(1),
  /** JSON controller config; defaults when absent. */
  configKey: z.string().min(1).optional(),
  mode: z.enum(['cpt', 'sft']).default('cpt'),
  /** The stage says stop when no category's weight moved by this much or more; without it, it always says continue. */
  stopBelow: z.number().min(0).max(1).optional(),
});

export const CorpusMixResult = z.object({
  mode: z.string(),
  weights: z.record(z.string(), z.number().min(0).max(1)),
  changes: z.array(z.object({ category: z.string(), oldWeight: z.number().nullable(), newWeight: z.number(), reason: z.string() })),
  notes: z.array(z.string()),
  /** The largest |new − old| weight of any category (a new category counts its whole weight). */
  maxWeightChange: z.number().min(0).default(0),
  decision: StageDecision.default({ continue: true, reason: 'no stop rule' }),
});

export const corpusMixPlan = defineStagePlan({
  description: 'next data-mixture weights from per-category losses; says stop once the weights settle',
  slots: {
    losses: { description: 'per-category loss report, JSONL {step, category, loss, tokens?}', defaultInput: 'losses.jsonl' },
    weights: { description: 'current weights, JSON {category: weight}', defaultInput: 'weights.json', artifact: 'weights.json' },
    config: { description: 'controller config, JSON (libs/mixture MixtureConfig)', defaultInput: 'mixture-config.json', optional: true },
  },
  params: z.object({ mode: z.enum(['cpt', 'sft']), stop_below: param.ratio() }).partial().strict(),
  paramPaths: { mode: 'mode', stopBelow: 'stop_below' },
  decides: true,
  build: ({ runId, inputs, params }) => {
    const configKey = inputs.maybe('config');
    return {
      runId,
      lossesKey: inputs.one('losses'),
      weightsKey: inputs.one('weights'),
      ...(configKey ? { configKey } : {}),
      ...(params.mode ? { mode: params.mode } : {}),
      ...(params.stop_below !== undefined ? { stopBelow: params.stop_below } : {}),
    };
  },
});
