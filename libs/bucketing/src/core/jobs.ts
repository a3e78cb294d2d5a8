import { z } from 'zod';
import { PackConfig } from './config';
import type { CompositionCounts, CompositionStats } from './metrics';

/**
 * Messages between the coordinator of a bucketing run and its shard workers (in-process,
 * child processes, or queue jobs). All plain JSON, validated with these schemas at the
 * boundary.
 */

/** Lines `[startLine, endLine)` of the input (0-based); `startByte` lets a plain file seek there. */
export const ShardSpec = z.object({
  index: z.number().int().nonnegative(),
  startLine: z.number().int().nonnegative(),
  endLine: z.number().int().nonnegative(),
  startByte: z.number().int().nonnegative().nullable(),
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
  /** Path of the input JSONL (plain or gzip). */
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
}) satisfies z.ZodType<CompositionCounts>;
export const CompositionStatsSchema = z.object({
  total: CompositionCountsSchema,
  byLength: z.record(z.string(), CompositionCountsSchema),
  byCategory: z.record(z.string(), CompositionCountsSchema),
}) satisfies z.ZodType<CompositionStats>;

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

export function shardPrefix(scratchPrefix: string, index: number): string {
  return `${scratchPrefix.replace(/\/+$/, '')}/${String(index).padStart(5, '0')}`;
}

/** Output name prefix of one sequence length, e.g. `bucket_2048` (`.bin`, `.idx`, `.categories.u16`). */
export function bucketPrefix(length: number): string {
  return `bucket_${length}`;
}

/** Per Megatron document (packed sequence): uint16 LE index into the manifest's `categories`. */
export const CATEGORY_SIDECAR_SUFFIX = '.categories.u16';
/**
 * Per Megatron sequence (document piece): two int64 LE, the 1-based input line of the document
 * and the token offset of the piece within it. Lets a reader put every document back together
 * and trace any sample to its source line.
 */
export const PIECE_SIDECAR_SUFFIX = '.pieces.i64';
