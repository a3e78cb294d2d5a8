import { z } from 'zod';
import { Architecture } from '../training-jobs';
import { PerCategoryChange, architectureFromParams, architectureParams, defineStagePlan, param, stageJob } from './stage-kit';

/**
 * sft: supervised fine-tuning of the policy in epochs whose category ratios are re-set after each
 * epoch from per-category loss (seed 二): converged or over-fitting categories (held-out loss up
 * while training loss falls) go down, high-loss ones up (`nextSftRatios` of `@xyp/mixture`). The
 * input is validated first (rejects with line numbers) and split by prompt hash into `train.jsonl`
 * and `held-out.jsonl`. The manifest is an engine checkpoint (`<runId>/sft`) with
 * `sft-category-loss.jsonl`, `sft-epochs.json` and plots.
 */
export const SftPayload = stageJob({
  /** Chat JSONL `{messages, category}` (or prompt/response, Alpaca lines). */
  dataKey: z.string().min(1),
  /** Held-out conversations in the same format; default: a prompt-hash split of the input. */
  heldOutKey: z.string().min(1).optional(),
  /** First-epoch ratios, JSON `{category: ratio}`; default: conversation shares. */
  ratiosKey: z.string().min(1).optional(),
  configKey: z.string().min(1).optional(),
  /** The policy to fine-tune (the cpt checkpoint's manifest); default: a fresh model. */
  initManifestKey: z.string().min(1).optional(),
  epochs: z.number().int().positive().default(3),
  examplesPerEpoch: z.number().int().positive().optional(),
  heldOutFraction: z.number().min(0).lt(1).default(0.1),
  /** Fail the stage (rejects kept) when more than this share of lines is rejected. */
  maxRejectRatio: z.number().min(0).max(1).default(0.5),
  batchSize: z.number().int().positive().default(8),
  lr: z.number().positive().default(2e-3),
  seed: z.number().int().nonnegative().default(1),
  /** A fresh model's shape (with `init`, the checkpoint's own shape is used). */
  architecture: Architecture.default(Architecture.parse({ layers: 2, width: 64, heads: 4, context: 128 })),
});

export const SftResult = z.looseObject({
  kind: z.literal('xyp-engine-checkpoint'),
  files: z.array(z.string()),
  checkpoint: z.string(),
  metrics: z.record(z.string(), z.number()),
  heldOut: PerCategoryChange,
  ratios: z.object({ first: z.record(z.string(), z.number()), last: z.record(z.string(), z.number()) }),
  input: z.object({ lines: z.number().int(), accepted: z.number().int(), rejected: z.number().int(), duplicates: z.number().int(), train: z.number().int(), heldOut: z.number().int() }),
});

export const sftPlan = defineStagePlan({
  description: 'SFT in epochs, category ratios re-set from per-category loss after every epoch (assistant tokens only)',
  slots: {
    data: { description: 'chat JSONL {messages, category}', defaultInput: 'sft.jsonl' },
    held_out: { description: 'held-out conversations (default: a prompt-hash split of data)', optional: true },
    ratios: { description: 'first-epoch ratios, JSON {category: ratio}', optional: true },
    config: { description: 'mixture controller settings, JSON (libs/mixture MixtureConfig)', optional: true },
    init: { description: 'the policy to fine-tune (e.g. cpt)', optional: true },
  },
  params: z
    .object({
      epochs: param.positiveInt(),
      examples_per_epoch: param.positiveInt(),
      held_out_fraction: z.coerce.number().min(0).lt(1),
      max_reject_ratio: param.ratio(),
      batch_size: param.positiveInt(),
      lr: z.coerce.number().positive(),
      seed: param.int(),
      ...architectureParams(),
    })
    .partial()
    .strict(),
  paramPaths: { epochs: 'epochs', batchSize: 'batch_size', examplesPerEpoch: 'examples_per_epoch', heldOutFraction: 'held_out_fraction' },
  build: ({ runId, inputs, params: p }) => {
    const defaults = SftPayload.shape.architecture.parse(undefined);
    const optional = (slot: string, key: string) => {
      const value = inputs.maybe(slot);
      return value ? { [key]: value } : {};
    };
    return {
      runId,
      dataKey: inputs.one('data'),
      ...optional('held_out', 'heldOutKey'),
      ...optional('ratios', 'ratiosKey'),
      ...optional('config', 'configKey'),
      ...optional('init', 'initManifestKey'),
      ...(p.epochs ? { epochs: p.epochs } : {}),
      ...(p.examples_per_epoch ? { examplesPerEpoch: p.examples_per_epoch } : {}),
      ...(p.held_out_fraction !== undefined ? { heldOutFraction: p.held_out_fraction } : {}),
      ...(p.max_reject_ratio !== undefined ? { maxRejectRatio: p.max_reject_ratio } : {}),
      ...(p.batch_size ? { batchSize: p.batch_size } : {}),
      ...(p.lr ? { lr: p.lr } : {}),
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
      architecture: architectureFromParams(defaults, p),
    };
  },
});
