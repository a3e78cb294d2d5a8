import { z } from 'zod';
import { Architecture, UfrmWeights } from '../training-jobs';
import { architectureFromParams, architectureParams, defineStagePlan, param, stageJob } from './stage-kit';

/**
 * reward.train: one UFRM reward-model training job (seed 三). The recipe runs it as instances: phase 1
 * `reward.train#pretrain` on the pretrain collection (general pairs, mostly helpfulness and safety),
 * phase 2 `reward.train#finetune` from phase 1's checkpoint on the finance collection, and, for the
 * ablation, a Bradley-Terry-only single phase on both collections with the same step budget. Each
 * instance is one seed; its manifest is an engine checkpoint (`<runId>/reward.train#<instance>`)
 * with its curves (`curves.jsonl`, `curves-*.png`).
 */
export const RewardTrainPayload = stageJob({
  /** `PreferenceRecord` JSONL to train on (a reward.prepare collection). */
  pairsKey: z.string().min(1),
  /** Held-out pairs for the curves (reward.prepare's `test.jsonl`); never trained on. */
  heldOutKey: z.string().min(1).optional(),
  /** The committed manifest of the reward.train instance to start from (phase 2 reads phase 1's). */
  initManifestKey: z.string().min(1).optional(),
  /** What the curves and the evaluation call this job: the phase (`pretrain`, `finetune`, `single`). */
  phase: z.string().min(1).default('single'),
  /** The model family the evaluation groups seeds under (`ufrm`, `bt-only`). */
  variant: z.string().min(1).default('ufrm'),
  seed: z.number().int().nonnegative().default(1),
  steps: z.number().int().positive().default(200),
  batchSize: z.number().int().positive().default(16),
  lr: z.number().positive().default(1e-3),
  architecture: Architecture.default(Architecture.parse({ layers: 2, width: 64, heads: 4, context: 256 })),
  dropout: z.number().min(0).max(0.9).default(0.1),
  /** How the reward reads a sequence (`RewardModelSpec.pooling`); unset: `last` for a fresh model, the init checkpoint's own otherwise. */
  pooling: z.enum(['last', 'mean']).optional(),
  weights: UfrmWeights.default(UfrmWeights.parse({ bt: 1, irl: 0.5, cl: 0.1, tau: 0.1 })),
  evalEvery: z.number().int().positive().default(25),
});

/** The manifest result of a reward.train instance: an engine checkpoint (what `openCheckpoint` reads) and its figures. */
export const RewardTrainResult = z.looseObject({
  kind: z.literal('xyp-engine-checkpoint'),
  files: z.array(z.string()),
  /** The checkpoint ID to score or serve with: `<runId>/reward.train#<instance>`. */
  checkpoint: z.string(),
  phase: z.string(),
  variant: z.string(),
  seed: z.number().int(),
  metrics: z.record(z.string(), z.number()),
});

const on = (flag: boolean | undefined) => flag;
export const rewardTrainPlan = defineStagePlan({
  description: 'trains one UFRM reward model (one phase, one seed) on the engine and commits its checkpoint and curves',
  slots: {
    pairs: { description: 'training pairs, PreferenceRecord JSONL (e.g. reward.prepare/pretrain.jsonl)', artifact: 'train.jsonl' },
    held_out: { description: 'held-out pairs for the curves (e.g. reward.prepare/test.jsonl)', artifact: 'test.jsonl', optional: true },
    init: { description: 'the reward.train instance to start from (phase 2: reward.train#pretrain)', optional: true },
  },
  params: z
    .object({
      phase: z.string().min(1),
      variant: z.string().min(1),
      seed: param.int(),
      steps: param.positiveInt(),
      batch_size: param.positiveInt(),
      lr: z.coerce.number().positive(),
      ...architectureParams(),
      dropout: z.coerce.number().min(0).max(0.9),
      pooling: z.enum(['last', 'mean']),
      w_bt: z.coerce.number().nonnegative(),
      w_irl: z.coerce.number().nonnegative(),
      w_cl: z.coerce.number().nonnegative(),
      tau: z.coerce.number().positive(),
      margin: param.boolean(),
      center: z.coerce.number().nonnegative(),
      eval_every: param.positiveInt(),
      /** Train `steps × budget_phases` steps: the ablation's single phase gets the budget of both UFRM phases. */
      budget_phases: param.positiveInt(),
    })
    .partial()
    .strict(),
  paramPaths: { steps: 'steps', batchSize: 'batch_size', 'weights.tau': 'tau', evalEvery: 'eval_every' },
  build: ({ runId, inputs, params: p }) => {
    const heldOutKey = inputs.maybe('held_out');
    const initManifestKey = inputs.maybe('init');
    const defaults = RewardTrainPayload.shape.architecture.parse(undefined);
    const defaultWeights = RewardTrainPayload.shape.weights.parse(undefined);
    const architecture = architectureFromParams(defaults, p);
    const weights = {
      ...defaultWeights,
      ...(p.w_bt !== undefined ? { bt: p.w_bt } : {}),
      ...(p.w_irl !== undefined ? { irl: p.w_irl } : {}),
      ...(p.w_cl !== undefined ? { cl: p.w_cl } : {}),
      ...(p.tau !== undefined ? { tau: p.tau } : {}),
      ...(on(p.margin) !== undefined ? { margin: p.margin } : {}),
      ...(p.center !== undefined ? { center: p.center } : {}),
    };
    return {
      runId,
      pairsKey: inputs.one('pairs'),
      ...(heldOutKey ? { heldOutKey } : {}),
      ...(initManifestKey ? { initManifestKey } : {}),
      ...(p.phase ? { phase: p.phase } : {}),
      ...(p.variant ? { variant: p.variant } : {}),
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
      ...(p.steps || p.budget_phases ? { steps: (p.steps ?? RewardTrainPayload.shape.steps.parse(undefined)) * (p.budget_phases ?? 1) } : {}),
      ...(p.batch_size ? { batchSize: p.batch_size } : {}),
      ...(p.lr ? { lr: p.lr } : {}),
      ...(p.dropout !== undefined ? { dropout: p.dropout } : {}),
      ...(p.pooling ? { pooling: p.pooling } : {}),
      ...(p.eval_every ? { evalEvery: p.eval_every } : {}),
      architecture,
      weights,
    };
  },
});
