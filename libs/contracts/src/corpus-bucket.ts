import { z } from 'zod';

/**
 * corpus.bucket: the schemas its coordinator, its shard workers and its readers share —
 * packing configuration, shard jobs and reports, and the bucketing manifest. The
 * algorithms live in `@xyp/bucketing`; only the data crossing process boundaries is here.
 */

/** Packing strategies (see `@xyp/bucketing`): the seed's bucket method, its best-fit reference and two baselines. */
export const STRATEGY_NAMES = ['bucket', 'bfd-buckets', 'bfd', 'fixed'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** How far packing may put documents of different categories into one sequence (see `PackConfig`). */
export const CATEGORY_MIXING = ['none', 'tails', 'all'] as const;
export type CategoryMixing = (typeof CATEGORY_MIXING)[number];

const DEFAULT_WINDOW_LINES = 65536;

/** XuanYuan3's buckets: 2k, 4k, 8k and 16k tokens (arXiv 2407.07495). */
export const DEFAULT_BUCKET_LENGTHS: readonly number[] = [2048, 4096, 8192, 16384];

/**
 * Everything that determines a packing run's output, plus the knobs that bound its memory.
 * Serializable, so a shard job can carry it. Output depends on every field except
 * `batchChars` (tokenizer batching), `streamLineBytes` (how long lines are read), `chunkChars`
 * (except at hard cuts, see there) and `maxRejectRate` (only decides failure).
 */
export const PackConfig = z
  .object({
    strategy: z.enum(STRATEGY_NAMES).default('bucket'),
    /** Sequence lengths, ascending: the buckets of `bucket`, the one length of `bfd`/`fixed`. */
    bucketLengths: z.array(z.number().int().min(1).max(1 << 24)).min(1).default([...DEFAULT_BUCKET_LENGTHS]),
    /** Seeds the per-window shuffle of sequences. */
    seed: z.number().int().min(0).max(0xffffffff).default(0),
    /**
     * A packing window never spans lines of two different `windowLines` blocks. Default:
     * 65,536, or `shardLines` when that is not a multiple of it.
     */
    windowLines: z.number().int().min(1).optional(),
    /**
     * ...and is cut once it holds this many tokens: the main memory bound (4 bytes a token,
     * 64 MiB at the default). Larger windows pack closer to a whole-corpus packing.
     */
    windowTokens: z.number().int().min(1).default(1 << 24),
    /**
     * The padding threshold P (arXiv 2407.07495): a sequence padded by more than this share
     * of its length is not written but carried into the next window (`bucket`, `bfd`,
     * `fixed`; not `bfd-buckets`), so padding mostly remains at shard ends.
     */
    paddingThreshold: z.number().min(0).max(1).default(0.01),
    /**
     * Which sequences may hold documents of several categories (each is labelled, in the
     * category sidecar, with the category holding most of its tokens):
     * `none`: every sequence holds one category, so each category pads its own last sequences;
     * `tails` (default): only the shard's last under-filled sequences are packed across
     * categories, every other sequence holds one category;
     * `all`: categories are ignored while packing (the least padding and concatenation;
     * sampling by category becomes approximate).
     */
    categoryMixing: z.enum(CATEGORY_MIXING).default('tails'),
    /** Lines per shard job; a multiple of `windowLines`. Fixes the shard plan for any worker count. */
    shardLines: z.number().int().min(1).default(65536),
    /** Append the tokenizer's end-of-document token to every document. */
    appendEod: z.boolean().default(true),
    /**
     * The run fails when rejected / (kept + rejected) exceeds this. The default only stops
     * a run on the wrong file or format (most lines unreadable); set it lower (e.g. 0.01)
     * to hold a production corpus to a standard. Rejects are always counted and kept.
     */
    maxRejectRate: z.number().min(0).max(1).default(0.5),
    /**
     * Longer lines are rejected (`line-too-long`) without being held in memory: a limit on one
     * document, not a memory bound (lines over `streamLineBytes` are streamed). 1 GiB.
     */
    maxLineBytes: z.number().int().min(1).default(1 << 30),
    /**
     * Longer lines are not held whole: their text is decoded as it is read and encoded in chunks,
     * and their tokens wait in a temporary file (4 bytes each) until the line has been checked
     * (`@xyp/bucketing` `io/long-document.ts`). Does not change the output. 4 MiB.
     */
    streamLineBytes: z.number().int().min(1).default(1 << 22),
    /**
     * Longest text the tokenizer is given at once; longer texts are cut at places where the ids of
     * the pieces equal those of the whole (`core/text-chunks.ts`). Changes the output only where a
     * text has no such place within `chunkChars / 2` characters.
     */
    chunkChars: z.number().int().min(2).default(1 << 12),
    /** Characters of text per tokenizer batch. */
    batchChars: z.number().int().min(1).default(1 << 19),
  })
  .transform((config) => ({ ...config, windowLines: config.windowLines ?? (config.shardLines % DEFAULT_WINDOW_LINES === 0 ? DEFAULT_WINDOW_LINES : config.shardLines) }))
  .superRefine((config, ctx) => {
    const lengths = config.bucketLengths;
    if (lengths.some((length, i) => i > 0 && length <= lengths[i - 1])) {
      ctx.addIssue({ code: 'custom', path: ['bucketLengths'], message: `must be strictly ascending, got ${lengths.join(',')}` });
    }
    if ((config.strategy === 'bfd' || config.strategy === 'fixed') && lengths.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['bucketLengths'], message: `strategy ${config.strategy} takes exactly one length, got ${lengths.join(',')}` });
    }
    if (config.shardLines % config.windowLines !== 0) {
      ctx.addIssue({ code: 'custom', path: ['shardLines'], message: `must be a multiple of windowLines (${config.windowLines}), got ${config.shardLines}` });
    }
    if (config.windowTokens < lengths[lengths.length - 1]) {
      ctx.addIssue({ code: 'custom', path: ['windowTokens'], message: `must be at least the largest sequence length (${lengths[lengths.length - 1]})` });
    }
  });
export type PackConfig = z.infer<typeof PackConfig>;
export type PackConfigInput = z.input<typeof PackConfig>;

/**
 * Messages between the coordinator of a bucketing run and its shard workers (in-process,
 * child processes, or queue jobs). All plain JSON, validated with these schemas at the
 * boundary.
 */

/**
 * Lines `[startLine, endLine)` of the input (0-based) and the bytes `[startByte, endByte)` that
 * hold them, so a shard reader fetches exactly its own bytes: of the input itself (plain), or of
 * the shard's own `object` (a gzip input is split into one gzip object per shard when planned;
 * then `[0, its compressed size)`). Null bytes: no range known (gzip not split), the reader
 * inflates from the start of the input and skips to `startLine`.
 */
export const ShardSpec = z.object({
  index: z.number().int().nonnegative(),
  startLine: z.number().int().nonnegative(),
  endLine: z.number().int().nonnegative(),
  startByte: z.number().int().nonnegative().nullable(),
  /** Exclusive; defaults (older jobs) to null: read to the end, stopping at `endLine`. */
  endByte: z.number().int().nonnegative().nullable().default(null),
  /** Name of the shard's own input object (split gzip) where the plan wrote it; null: the input. */
  object: z.string().min(1).nullable().default(null),
});
export type ShardSpec = z.infer<typeof ShardSpec>;

export const TokenizerRef = z.object({
  /** `llama3` or a `tokenizer.json` path, loaded by the worker. */
  spec: z.string().min(1),
  /** End-of-document id appended to every document, or null for none. */
  eodId: z.number().int().nonnegative().nullable(),
  dtype: z.enum(['uint16', 'int32']),
});
export type TokenizerRef = z.infer<typeof TokenizerRef>;

export const ShardJob = z.object({
  /**
   * Path of the file the shard reads `shard.startByte..endByte` of: the input JSONL (plain or
   * gzip), or the shard's own gzip object once a gzip input was split. `packShard` may be given
   * another byte source (the platform's artifact store) instead.
   */
  input: z.string().min(1),
  gzip: z.boolean(),
  shard: ShardSpec,
  config: PackConfig,
  tokenizer: TokenizerRef,
  /** Where the shard writes: `<scratchPrefix>/<index, 5 digits>/...` in the scratch store. */
  scratchPrefix: z.string().min(1),
});
export type ShardJob = z.infer<typeof ShardJob>;

const Count = z.number().int().nonnegative();
export const CompositionCountsSchema = z.object({
  documents: Count,
  truncatedDocuments: Count,
  pieces: Count,
  sequences: Count,
  tokens: Count,
  paddingTokens: Count,
  /** Sequences holding documents of more than one category (pooled shard-end leftovers). */
  mixedSequences: Count,
});
export const CompositionStatsSchema = z.object({
  total: CompositionCountsSchema,
  byLength: z.record(z.string(), CompositionCountsSchema),
  byCategory: z.record(z.string(), CompositionCountsSchema),
});

export const ShardReport = z.object({
  shard: ShardSpec,
  /** Lines read, blank ones included. */
  lines: Count,
  blankLines: Count,
  kept: Count,
  rejected: Count,
  rejectsByReason: z.record(z.string(), Count),
  /** Category names in the order of the shard's sidecar codes. */
  categories: z.array(z.string()),
  stats: CompositionStatsSchema,
  /** Per sequence length: the shard's dataset. */
  outputs: z.array(z.object({ length: z.number().int().positive(), prefix: z.string(), sequences: Count, documents: Count, tokens: Count })),
  rejectsName: z.string(),
  /** Wall time of the shard and the part of it spent waiting for the tokenizer. */
  timings: z.object({ totalMs: z.number().nonnegative(), tokenizerWaitMs: z.number().nonnegative() }),
});
export type ShardReport = z.infer<typeof ShardReport>;

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
    categoryMixing: z.enum(CATEGORY_MIXING),
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
  /** One entry per configured length; a length with no sequences has no files (Megatron-LM cannot map an empty `.bin`). */
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
