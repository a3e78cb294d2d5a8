import { z } from 'zod';
import { Architecture } from '../training-jobs';
import { PerCategoryChange, architectureFromParams, architectureParams, defineStagePlan, param, stageJob } from './stage-kit';

/**
 * cpt: continued pretraining of the policy on the corpus stage's packed shards with the dynamic data
 * mixture in the loop (seed 一): the job's steps are cut into mixture stages, and at each boundary
 * the controller of `@xyp/mixture` (the same decision code as `corpus.mix`) re-sets the per-category
 * sampling weights from the stage's per-category training loss. The manifest is an engine checkpoint
 * (`<runId>/cpt`) with `category-loss.jsonl`, `mixture.json` (weights, draws and reasons per stage),
 * `weights.json` and plots.
 */
export const CptPayload = stageJob({
  /** The committed manifest of the corpus.bucket stage (or instance) whose shards to train on. */
  shardsManifestKey: z.string().min(1),
  /** First-stage weights, JSON `{category: weight}`; default: each category's share of training tokens. */
  weightsKey: z.string().min(1).optional(),
  /** Controller settings, JSON (`MixtureConfig` of `@xyp/mixture`). */
  configKey: z.string().min(1).optional(),
  /** The checkpoint to continue from (a committed engine checkpoint's manifest); default: a fresh model. */
  initManifestKey: z.string().min(1).optional(),
  buckets: z.array(z.number().int().positive()).min(1).optional(),
  steps: z.number().int().positive().default(120),
  stages: z.number().int().positive().default(3),
  batchSize: z.number().int().positive().default(8),
  lr: z.number().positive().default(3e-3),
  seed: z.number().int().nonnegative().default(1),
  architecture: Architecture.default(Architecture.parse({ layers: 2, width: 64, heads: 4, context: 128 })),
  validationFraction: z.number().min(0).lt(1).default(0.1),
  validationRows: z.number().int().positive().default(16),
  evalEvery: z.number().int().positive().default(10),
  logEvery: z.number().int().positive().default(2),
});

/**
 * The manifest result of cpt: an engine checkpoint, its per-category validation loss and weights.
 * On the cluster engine (`engine: 'cluster'`, one Megatron job) `validation` holds only what the
 * job's `metrics.json` reports (empty when nothing), `weights.first` the blend it trained with
 * (empty: the shards unweighted), and `weights.next` is absent unless the job reports it.
 */
export const CptResult = z.looseObject({
  kind: z.literal('xyp-engine-checkpoint'),
  files: z.array(z.string()),
  checkpoint: z.string(),
  metrics: z.record(z.string(), z.number()),
  validation: PerCategoryChange,
  weights: z.object({ first: z.record(z.string(), z.number()), next: z.record(z.string(), z.number()).optional() }),
});

export const cptPlan = defineStagePlan({
  description: 'continued pretraining on packed shards, the data mixture re-set from per-category loss at every mixture stage',
  slots: {
    shards: { description: 'the corpus.bucket stage or instance to train on (e.g. corpus.bucket#byte)' },
    weights: { description: 'first-stage weights, JSON {category: weight}', optional: true },
    config: { description: 'mixture controller settings, JSON (libs/mixture MixtureConfig)', optional: true },
    init: { description: 'a checkpoint to continue from', optional: true },
  },
  params: z
    .object({
      steps: param.positiveInt(),
      stages: param.positiveInt(),
      batch_size: param.positiveInt(),
      lr: z.coerce.number().positive(),
      seed: param.int(),
      ...architectureParams(),
      buckets: param.intList(),
      validation_fraction: z.coerce.number().min(0).lt(1),
      validation_rows: param.positiveInt(),
      eval_every: param.positiveInt(),
      log_every: param.positiveInt(),
    })
    .partial()
    .strict(),
  paramPaths: { steps: 'steps', stages: 'stages', batchSize: 'batch_size', evalEvery: 'eval_every', logEvery: 'log_every', validationFraction: 'validation_fraction', validationRows: 'validation_rows' },
  build: ({ runId, inputs, params: p }) => {
    const defaults = CptPayload.shape.architecture.parse(undefined);
    const weightsKey = inputs.maybe('weights');
    const configKey = inputs.maybe('config');
    const initManifestKey = inputs.maybe('init');
    return {
      runId,
      shardsManifestKey: inputs.one('shards'),
      ...(weightsKey ? { weightsKey } : {}),
      ...(configKey ? { configKey } : {}),
      ...(initManifestKey ? { initManifestKey } : {}),
      ...(p.buckets ? { buckets: p.buckets } : {}),
      ...(p.steps ? { steps: p.steps } : {}),
      ...(p.stages ? { stages: p.stages } : {}),
      ...(p.batch_size ? { batchSize: p.batch_size } : {}),
      ...(p.lr ? { lr: p.lr } : {}),
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
      ...(p.validation_fraction !== undefined ? { validationFraction: p.validation_fraction } : {}),
      ...(p.validation_rows ? { validationRows: p.validation_rows } : {}),
      ...(p.eval_every ? { evalEvery: p.eval_every } : {}),
      ...(p.log_every ? { logEvery: p.log_every } : {}),
      architecture: architectureFromParams(defaults, p),
    };
  },
});
