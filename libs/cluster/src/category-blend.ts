/**
 * Per-category sampling weights as a Megatron-LM blend (`--data-path w1 prefix1 w2 prefix2 …`).
 *
 * Megatron blends datasets, not categories, so the corpus stage's packed shards are first split
 * into one dataset per (bucket, category) (`splitBucketsByCategory` of `@xyp/bucketing`, `xyp
 * corpus split-categories`), indexed by `categories.json`. This file reads that index as plain data
 * (this library does no I/O: the caller parses the file) and turns a mixture's weights into the
 * `{weight, prefix}` entries of `data.megatron`.
 */
import { z } from 'zod';
import type { MegatronData } from '@xyp/contracts';
import { joinPosix } from './posix-path';

/**
 * `categories.json` as this library reads it: `{category: {buckets: {L: {prefix, documents,
 * sequences, tokens}}}}`, `prefix` relative to the split's directory. The same shape as
 * `CategorySplitIndex` of `@xyp/bucketing` (which writes it); this library may not import that I/O
 * lib, so it checks the fields it uses itself and ignores others.
 */
export const CategorySplit = z.record(
  z.string().min(1),
  z.object({
    buckets: z.record(
      z.string().regex(/^[1-9][0-9]*$/, 'a bucket length'),
      z.object({ prefix: z.string().min(1), documents: z.number().int().nonnegative(), sequences: z.number().int().nonnegative(), tokens: z.number().int().nonnegative() }),
    ),
  }),
);
export type CategorySplit = z.output<typeof CategorySplit>;

/** `data.megatron` of a CPT or SFT spec. */
export type MegatronDataEntries = z.output<typeof MegatronData>;

export interface CategoryBlendOptions {
  /** Use this bucket length only; without it, every bucket a category has data in. */
  bucket?: number;
  /** The split's directory on the shared volume (relative to its mount point, or absolute): prefixes are joined to it. */
  mountPrefix: string;
}

/** Parses `categories.json` content, naming the first problem by path. */
export function parseCategorySplit(split: unknown): CategorySplit {
  const parsed = CategorySplit.safeParse(split);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`category split (categories.json): ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
}

/**
 * The Megatron blend of per-category weights over a category split.
 *
 * - Categories with weight 0 are dropped; every other weight must name a category of the split
 *   that has data (in `bucket`, when given). A weight for an unknown category, for a category
 *   without data, or a negative or non-finite weight is an error naming it; so is a mixture with
 *   no positive weight.
 * - One category over several buckets: its weight is divided among its buckets in proportion to
 *   their tokens (`w · tokens_b / Σ tokens`). Megatron samples each dataset of a blend by its share
 *   of samples and every sample is `--seq-length` tokens, so the category keeps its weight as its
 *   share of training tokens and its buckets are drawn alike, token for token.
 * - Weights are not normalised (Megatron normalises the blend itself). Entries come in category
 *   name order (UTF-16 code units), each category's buckets by length, so the same weights always
 *   render the same arguments.
 */
export function megatronCategoryBlend(weights: Record<string, number>, split: unknown, options: CategoryBlendOptions): MegatronDataEntries {
  const categories = parseCategorySplit(split);
  if (options.bucket !== undefined && !(Number.isInteger(options.bucket) && options.bucket > 0)) throw new Error(`category blend: bucket ${options.bucket} is not a positive integer`);
  const known = Object.keys(categories).sort();
  const entries: MegatronDataEntries = [];
  for (const category of Object.keys(weights).sort()) {
    const weight = weights[category];
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) throw new Error(`weights.${category}: ${weight} is not a finite non-negative number`);
    if (weight === 0) continue;
    const found = Object.hasOwn(categories, category) ? categories[category] : undefined;
    if (!found) throw new Error(`weights.${category}: no category "${category}" in the split (it has ${known.join(', ') || 'none'})`);
    const buckets = Object.entries(found.buckets)
      .map(([length, entry]) => ({ length: Number(length), ...entry }))
      .filter((entry) => entry.tokens > 0 && (options.bucket === undefined || entry.length === options.bucket))
      .sort((a, b) => a.length - b.length);
    if (buckets.length === 0) {
      const has = Object.entries(found.buckets).filter(([, entry]) => entry.tokens > 0).map(([length]) => length);
      throw new Error(
        `weights.${category}: category "${category}" has weight ${weight} but no data${options.bucket !== undefined ? ` in bucket ${options.bucket} (it has data in ${has.join(', ') || 'no bucket'})` : ' in any bucket'}`,
      );
    }
    const tokens = buckets.reduce((sum, entry) => sum + entry.tokens, 0);
    for (const entry of buckets) entries.push({ weight: (weight * entry.tokens) / tokens, prefix: joinPosix(options.mountPrefix, entry.prefix) });
  }
  if (entries.length === 0) throw new Error(`weights: no category has a positive weight (got ${JSON.stringify(weights)})`);
  return entries;
}
