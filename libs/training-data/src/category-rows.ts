/**
 * CPT rows of every bucket of a bucketing run, each row labelled with its category, and split into
 * training and validation rows: what the CPT loop samples by mixture weight (`@xyp/local-engine`
 * `trainCptMixture`).
 *
 * - Rows come from `readShardRows` (one per bucket), so attention, targets and positions stay inside
 *   each document piece. A bucket shorter than the row length (`L < context + 1`) gets its rows
 *   widened with padding (masked one-token segments), so every row has `context + 1` tokens.
 * - The category of a row is the category of its packed sequence, read from the category sidecar
 *   (`bucket_<L>.categories.u16`: one index into the manifest's `categories` per packed sequence,
 *   the category holding most of its tokens). The run's `manifest.json` is needed for the names.
 * - Validation: whole packed sequences, never rows of one sequence on both sides. A sequence is held
 *   out when a seeded hash of (bucket, sequence) falls below `validationFraction`; each category keeps
 *   at least one training sequence, and gets at least one validation sequence when it has two or more.
 */
import { CATEGORY_SIDECAR_SUFFIX, decodeCategorySidecar } from '@xyp/packing';
import { deriveSeed } from '@xyp/random';
import type { BucketShards } from './shard-rows';
import { readShardRows, type ShardRows } from './shard-rows';

export interface CategoryRows {
  rowLength: number;
  tokens: Int32Array;
  docIds: Int32Array;
  /** Category names, sorted (the manifest's list). */
  categories: string[];
  /** Index into `categories` of every row. */
  rowCategory: Int32Array;
  /** Rows for training and for validation, by category name (row indices, ascending). */
  train: Record<string, number[]>;
  validation: Record<string, number[]>;
  /** Buckets read, with their packed-sequence counts. */
  buckets: { length: number; packedSequences: number; rows: number }[];
  packedSequences: number;
  tokenCount: number;
  maxTokenId: number;
  tokenizer: ShardRows['tokenizer'];
}

export interface CategoryRowsOptions {
  /** Model context C: rows hold `C + 1` tokens. */
  context: number;
  vocabSize?: number;
  /** Bucket lengths to read; default every non-empty bucket of the run. */
  buckets?: number[];
  /** Share of packed sequences held out for validation (0 ≤ f < 1). */
  validationFraction: number;
  /** Seeds the hash that picks validation sequences. */
  seed: number;
  /** Read at most this many packed sequences per bucket (file order). */
  maxSequencesPerBucket?: number;
}

/** A number in [0, 1) from (seed, bucket, sequence), independent of reading order. */
function unitHash(seed: number, bucket: number, sequence: number): number {
  return (deriveSeed(seed, `validation:${bucket}:${sequence}`) >>> 0) / 2 ** 32;
}

export async function readCategoryRows(shards: BucketShards, options: CategoryRowsOptions): Promise<CategoryRows> {
  const { context, validationFraction } = options;
  if (!(validationFraction >= 0 && validationFraction < 1)) throw new Error(`shards ${shards.id}: validationFraction must be in [0, 1), got ${validationFraction}`);
  const manifest = shards.manifest;
  if (!manifest) throw new Error(`shards ${shards.id}: no manifest.json in ${shards.location}; sampling by category needs the run's category names`);
  const lengths = options.buckets ?? manifest.buckets.filter((b) => b.megatronDocuments > 0).map((b) => b.length);
  if (lengths.length === 0) throw new Error(`shards ${shards.id}: every bucket is empty`);
  const R = context + 1;
  const parts: { rows: ShardRows; categoryOfSequence: Uint16Array }[] = [];
  for (const length of lengths) {
    const rows = await readShardRows(shards, { bucket: length, context, vocabSize: options.vocabSize, maxSequences: options.maxSequencesPerBucket });
    const sidecarName = `${rows.prefix}${CATEGORY_SIDECAR_SUFFIX}`;
    if (!(await shards.source.exists(sidecarName))) throw new Error(`shards ${shards.id}: no category sidecar ${sidecarName} in ${shards.location}`);
    const codes = decodeCategorySidecar(await shards.source.readAll(sidecarName));
    if (codes.length < rows.packedSequences) throw new Error(`shards ${shards.id}: ${sidecarName} labels ${codes.length} packed sequences, the dataset has ${rows.packedSequences}`);
    for (let d = 0; d < rows.packedSequences; d++) {
      if (codes[d] >= manifest.categories.length) throw new Error(`shards ${shards.id}: ${sidecarName}: packed sequence ${d} has category code ${codes[d]}; the manifest names ${manifest.categories.length} categories`);
    }
    parts.push({ rows, categoryOfSequence: codes });
  }
  const total = parts.reduce((sum, p) => sum + p.rows.rowSequence.length, 0);
  const tokens = new Int32Array(total * R);
  const docIds = new Int32Array(total * R);
  for (let i = 0; i < docIds.length; i++) docIds[i] = -1 - (i % R);
  const rowCategory = new Int32Array(total);
  // Per category: packed sequences as [bucket part, sequence, rows...].
  const sequences = new Map<string, { part: number; sequence: number; rows: number[] }[]>();
  let row = 0;
  parts.forEach(({ rows, categoryOfSequence }, part) => {
    const r = rows.rowLength;
    let last = -1;
    for (let k = 0; k < rows.rowSequence.length; k++) {
      tokens.set(rows.tokens.subarray(k * r, (k + 1) * r), row * R);
      docIds.set(rows.docIds.subarray(k * r, (k + 1) * r), row * R);
      const sequence = rows.rowSequence[k];
      const code = categoryOfSequence[sequence];
      rowCategory[row] = code;
      const name = manifest.categories[code];
      const list = sequences.get(name) ?? [];
      if (sequence !== last) list.push({ part, sequence, rows: [] });
      list[list.length - 1].rows.push(row);
      sequences.set(name, list);
      last = sequence;
      row += 1;
    }
  });
  const train: Record<string, number[]> = {};
  const validation: Record<string, number[]> = {};
  for (const [name, list] of [...sequences].sort(([a], [b]) => a.localeCompare(b))) {
    const scored = list.map((s) => ({ ...s, u: unitHash(options.seed, lengths[s.part], s.sequence) }));
    const held = new Set(scored.filter((s) => s.u < validationFraction));
    const byHash = [...scored].sort((a, b) => a.u - b.u);
    if (validationFraction > 0 && held.size === 0 && list.length >= 2) held.add(byHash[0]);
    if (held.size === list.length) held.delete(byHash[byHash.length - 1]);
    train[name] = scored.filter((s) => !held.has(s)).flatMap((s) => s.rows);
    validation[name] = scored.filter((s) => held.has(s)).flatMap((s) => s.rows);
  }
  return {
    rowLength: R,
    tokens,
    docIds,
    categories: [...manifest.categories],
    rowCategory,
    train,
    validation,
    buckets: parts.map((p) => ({ length: p.rows.bucket, packedSequences: p.rows.packedSequences, rows: p.rows.rowSequence.length })),
    packedSequences: parts.reduce((sum, p) => sum + p.rows.packedSequences, 0),
    tokenCount: parts.reduce((sum, p) => sum + p.rows.tokenCount, 0),
    maxTokenId: Math.max(...parts.map((p) => p.rows.maxTokenId)),
    tokenizer: parts[0].rows.tokenizer,
  };
}
