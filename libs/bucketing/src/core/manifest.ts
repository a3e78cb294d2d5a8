import { z } from 'zod';
import { STRATEGY_NAMES } from './strategy';
import { CompositionCountsSchema } from './jobs';

const Count = z.number().int().nonnegative();
const Ratio = z.number().min(0);
const Ratios = { paddingRatio: Ratio, truncationRatio: Ratio, concatRatio: Ratio };
const CountsWithRatios = CompositionCountsSchema.extend(Ratios);

export const WrittenFileSchema = z.object({ name: z.string(), bytes: Count, sha256: z.string().regex(/^[0-9a-f]{64}$/) });

/**
 * `manifest.json` of a bucketing run, written last (its presence means the run completed).
 * Deterministic: the same input, config and tokenizer give the same bytes, whatever the number
 * of workers (no timestamps or timings in here; the CLI prints those).
 */
export const BucketManifest = z.object({
  version: z.literal(1),
  kind: z.literal('xyp.corpus.bucket'),
  /** How the Megatron files encode the packing (see `io/indexed-dataset.ts`). */
  layout: z.object({
    format: z.literal('megatron-indexed-dataset'),
    megatronSequence: z.literal('document-piece'),
    megatronDocument: z.literal('packed-sequence'),
    paddingStored: z.literal(false),
    categorySidecar: z.literal('uint16-le-per-megatron-document'),
    pieceSidecar: z.literal('int64-le-line-and-offset-per-megatron-sequence'),
  }),
  tokenizer: z.object({ name: z.string(), vocabSize: z.number().int().positive(), eodTokenId: z.number().int().nullable(), dtype: z.enum(['uint16', 'int32']) }),
  config: z.object({
    strategy: z.enum(STRATEGY_NAMES),
    bucketLengths: z.array(z.number().int().positive()),
    seed: Count,
    windowLines: z.number().int().positive(),
    windowTokens: z.number().int().positive(),
    paddingThreshold: z.number().min(0).max(1),
    shardLines: z.number().int().positive(),
    appendEod: z.boolean(),
    maxRejectRate: z.number().min(0).max(1),
  }),
  input: z.object({
    name: z.string(),
    bytes: Count,
    sha256: z.string(),
    gzip: z.boolean(),
    lines: Count,
    blankLines: Count,
    /** Non-blank lines: always `kept + rejected`. */
    documentsIn: Count,
    kept: Count,
    rejected: Count,
    rejectRate: Ratio,
    rejectsByReason: z.record(z.string(), Count),
    shards: Count,
  }),
  /** Category names; the sidecar stores indices into this list. Sorted. */
  categories: z.array(z.string()),
  totals: CountsWithRatios,
  buckets: z.array(
    CountsWithRatios.extend({
      length: z.number().int().positive(),
      prefix: z.string(),
      megatronSequences: Count,
      megatronDocuments: Count,
    }),
  ),
  byCategory: z.record(z.string(), CountsWithRatios),
  files: z.array(WrittenFileSchema),
});
export type BucketManifest = z.infer<typeof BucketManifest>;
