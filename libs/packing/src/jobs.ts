import type { z } from 'zod';
import { CompositionCountsSchema, CompositionStatsSchema, ShardJob, ShardReport, ShardSpec, TokenizerRef } from '@xyp/contracts';
import type { CompositionCounts, CompositionStats } from './metrics';

export { CompositionCountsSchema, CompositionStatsSchema, ShardJob, ShardReport, ShardSpec, TokenizerRef };

// The wire schemas (in @xyp/contracts) and the counters packing computes must agree.
const _schemasMatchCounters: [z.ZodType<CompositionCounts>, z.ZodType<CompositionStats>] = [CompositionCountsSchema, CompositionStatsSchema];

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
