import { z } from 'zod';
import { STRATEGY_NAMES } from './strategy';

/** XuanYuan3's buckets: 2k, 4k, 8k and 16k tokens (arXiv 2407.07495). */
export const DEFAULT_BUCKET_LENGTHS: readonly number[] = [2048, 4096, 8192, 16384];

/**
 * Everything that determines a packing run's output, plus the knobs that bound its memory.
 * Serializable, so a shard job can carry it. Output depends on every field except
 * `batchChars` (tokenizer batching) and `maxRejectRate` (only decides failure).
 */
export const PackConfig = z
  .object({
    strategy: z.enum(STRATEGY_NAMES).default('bucket'),
    /** Sequence lengths, ascending: the buckets of `bucket`, the one length of `bfd`/`fixed`. */
    bucketLengths: z.array(z.number().int().min(1).max(1 << 24)).min(1).default([...DEFAULT_BUCKET_LENGTHS]),
    /** Seeds the per-window shuffle of sequences. */
    seed: z.number().int().min(0).max(0xffffffff).default(0),
    /** A packing window never spans lines of two different `windowLines` blocks. */
    windowLines: z.number().int().min(1).default(8192),
    /** ...and is cut once it holds this many tokens: the main memory bound (4 bytes a token). */
    windowTokens: z.number().int().min(1).default(1 << 20),
    /**
     * The padding threshold P (arXiv 2407.07495): `bucket` takes the smallest bucket whose
     * padding share is at most P, and a sequence padded by more than P is carried into
     * the next window instead of being written, so padding mostly remains at shard ends.
     */
    paddingThreshold: z.number().min(0).max(1).default(0.01),
    /** Lines per shard job; a multiple of `windowLines`. Fixes the shard plan for any worker count. */
    shardLines: z.number().int().min(1).default(65536),
    /** Append the tokenizer's end-of-document token to every document. */
    appendEod: z.boolean().default(true),
    /** The run fails when rejected / (kept + rejected) exceeds this. */
    maxRejectRate: z.number().min(0).max(1).default(0.01),
    /** Longer lines are rejected (`line-too-long`) without being held in memory. */
    maxLineBytes: z.number().int().min(1).default(64 << 20),
    /** Characters of text per tokenizer batch. */
    batchChars: z.number().int().min(1).default(1 << 19),
  })
  .superRefine((config, ctx) => {
    const lengths = config.bucketLengths;
    if (lengths.some((length, i) => i > 0 && length <= lengths[i - 1])) {
      ctx.addIssue({ code: 'custom', path: ['bucketLengths'], message: `must be strictly ascending, got ${lengths.join(',')}` });
    }
    if (config.strategy !== 'bucket' && lengths.length !== 1) {
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

/** Parses a config, turning zod issues into one readable line. */
export function parsePackConfig(input: PackConfigInput): PackConfig {
  const parsed = PackConfig.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid packing config: ${issue.path.join('.') || 'config'} ${issue.message}`);
  }
  return parsed.data;
}

/** Megatron token dtype for a vocabulary: uint16 below 65,500 entries, else int32 (`DType.optimal_dtype`). */
export type TokenDtype = 'uint16' | 'int32';
export function tokenDtypeFor(vocabSize: number): TokenDtype {
  return vocabSize < 65500 ? 'uint16' : 'int32';
}
