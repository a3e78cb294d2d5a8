import { z } from 'zod';

/**
 * One line of a per-category loss report: JSONL written by a trainer, or an entry of a
 * job result. `step` is the optimiser step for a continued-pretraining stage and the
 * epoch index for SFT; `tokens` (optional) weighs lines that share a step. Unknown keys
 * (learning rate, timestamps, ...) are allowed and dropped.
 */
export const LossReportLine = z.object({
  step: z
    .number({ error: 'step must be an integer >= 0' })
    .int({ error: 'step must be an integer >= 0' })
    .min(0, { error: 'step must be an integer >= 0' }),
  category: z.string({ error: 'category must be a non-empty string' }).min(1, { error: 'category must be a non-empty string' }),
  loss: z.number({ error: 'loss must be a finite number >= 0' }).min(0, { error: 'loss must be a finite number >= 0' }),
  tokens: z
    .number({ error: 'tokens must be an integer >= 0' })
    .int({ error: 'tokens must be an integer >= 0' })
    .min(0, { error: 'tokens must be an integer >= 0' })
    .optional(),
});
export type LossReportLine = z.infer<typeof LossReportLine>;

/** Sampling weights (or SFT ratios) per category: finite and >= 0; normalised by the controller. */
export const Weights = z.record(
  z.string().min(1, { error: 'category names must be non-empty' }),
  z.number({ error: 'a weight must be a finite number >= 0' }).min(0, { error: 'a weight must be a finite number >= 0' }),
);
export type Weights = z.infer<typeof Weights>;

/** Per-category override of the global share bounds. */
export const ShareBounds = z
  .object({
    min: z.number().min(0).max(1).optional(),
    max: z.number().min(0).max(1).optional(),
  })
  .strict();
export type ShareBounds = z.infer<typeof ShareBounds>;

/**
 * Controller settings. Every field has a default, so `{}` is a valid config; unknown
 * keys are rejected so that a typo in a config file is not silently ignored.
 */
export const MixtureConfig = z
  .object({
    /** η of the multiplicative-weights step `w' ∝ w·exp(η·s)`. */
    learningRate: z.number().positive().max(100).default(1),
    /** γ: share of the uniform distribution mixed into the updated weights. */
    smoothing: z.number().min(0).max(1).default(0.05),
    /** Lowest share any category may get. */
    minShare: z.number().min(0).max(1).default(0.01),
    /** Highest share any category may get. */
    maxShare: z.number().gt(0).max(1).default(0.6),
    /** Largest absolute change of one category's share in one stage (1 = no limit). */
    maxStep: z.number().gt(0).max(1).default(0.1),
    /** β of the exponential moving average that smooths the loss curve (0 = no smoothing). */
    emaBeta: z.number().min(0).lt(1).default(0.8),
    /** How many of the latest points the log-loss slope is fitted on. */
    slopeWindow: z.number().int().min(2).default(8),
    /** Fewer points than this: slope taken as 0 and the category flagged. */
    minSlopePoints: z.number().int().min(2).default(3),
    /** a: weight of the level term `ln(L_now / L_ref)` in the signal. */
    levelWeight: z.number().min(0).default(1),
    /** b: weight of the trend term `g·T` in the signal. */
    slopeWeight: z.number().min(0).default(1),
    /** c: the raw signal is clipped to [-c, c] before the update. */
    signalClip: z.number().positive().default(2),
    /** Floor applied to losses before taking logarithms (a loss of 0 stays finite). */
    lossFloor: z.number().positive().default(1e-6),
    /** Reference-model loss per category (DoReMi's ℓ_ref); default reference is the stage start. */
    referenceLosses: z.record(z.string().min(1), z.number().positive()).optional(),
    /** Only report lines with `step >= sinceStep` belong to the stage being judged. */
    sinceStep: z.number().int().min(0).optional(),
    /** Initial share of a category that is in the report but not in the weights (default 1/n). */
    newCategoryShare: z.number().gt(0).lt(1).optional(),
    /** Per-category overrides of minShare / maxShare. */
    bounds: z.record(z.string().min(1), ShareBounds).optional(),
    /**
     * SFT over-fitting test (`nextSftRatios` with held-out losses): held-out loss of the last epoch
     * above the previous epoch's by more than this relative margin, while training loss fell.
     */
    overfitTolerance: z.number().min(0).default(0),
  })
  .strict()
  .refine((c) => c.minShare <= c.maxShare, { error: 'minShare must not exceed maxShare', path: ['minShare'] })
  .refine((c) => c.minSlopePoints <= c.slopeWindow, {
    error: 'minSlopePoints must not exceed slopeWindow',
    path: ['minSlopePoints'],
  });
export type MixtureConfig = z.output<typeof MixtureConfig>;
export type MixtureConfigInput = z.input<typeof MixtureConfig>;

/**
 * One document of the packed corpus index (one entry per document per bucket shard):
 * its category, its bucket (the sequence length of the shard), its position in that
 * shard, and its token count.
 */
export const IndexedDocument = z.object({
  category: z.string().min(1),
  bucket: z.number().int().positive(),
  docIndex: z.number().int().min(0),
  tokens: z.number().int().positive(),
});
export type IndexedDocument = z.infer<typeof IndexedDocument>;
