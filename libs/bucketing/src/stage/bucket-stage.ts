import { z } from 'zod';
import {
  ShardSpec,
  type ArtifactEntry,
  type BucketManifest,
  type ParsedPartPayloadOf,
  type PartPayloadOf,
  type PackConfig,
  type PartResultOf,
  type ResultOf,
  type TokenizerRef,
} from '@xyp/contracts';
import type { ArtifactStore } from '@xyp/storage';
import type { TextTokenizer } from '@xyp/tokenizer';
import { type TokenEncoder, ratios, tokenDtypeFor } from '@xyp/packing';
import { planInput, type InputPlan } from '../io/jsonl';
import { RejectRateExceededError, mergeShards } from '../io/merge';
import { packShard, type ShardProgress } from '../io/shard';
import { StoreArtifacts } from './store-artifacts';
import { storeByteSource } from './store-byte-source';

/**
 * corpus.bucket on the platform: the stage job plans shard parts over the committed input (one
 * read of it; a gzip input is split into one gzip object per shard on the way), each part job
 * reads only its shard's bytes from the store (a ranged read) and packs them into the store, and
 * the stage job merges the parts into the final datasets. The same functions as `bucketCorpus`,
 * with the store in place of a directory and BullMQ jobs in place of a worker pool. No worker
 * keeps a local copy of the input.
 */
export const BUCKET_STAGE = 'corpus.bucket';
const SCRATCH_PREFIX = '.shards';

export interface BucketStageIo {
  store: ArtifactStore;
}

/**
 * The plan as the stage job keeps it between planning and merging (on the BullMQ job, as JSON):
 * checked when it comes back, so a stale or damaged value fails loudly instead of merging wrong.
 */
export const StoredInputPlan = z.object({
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  gzip: z.boolean(),
  lines: z.number().int().nonnegative(),
  shards: z.array(ShardSpec),
});
const _planMatches: z.ZodType<InputPlan, z.input<typeof StoredInputPlan>> = StoredInputPlan;

type ShardPart = PartPayloadOf<'corpus.bucket'>;
type ShardPartResult = PartResultOf<'corpus.bucket'>;

export function tokenizerRef(spec: string, tokenizer: TextTokenizer, config: PackConfig): TokenizerRef & { name: string; vocabSize: number } {
  if (config.appendEod && tokenizer.eosId === null) {
    throw new Error(`tokenizer ${spec} has no known end-of-document token; set config.appendEod to false`);
  }
  return { spec, name: tokenizer.name, vocabSize: tokenizer.vocabSize, eodId: tokenizer.eosId, dtype: tokenDtypeFor(tokenizer.vocabSize) };
}

/**
 * Splits the input into shard parts of `config.shardLines` lines (never by worker count), in one
 * read of the input object. Plain input: each part reads `[startByte, endByte)` of it. Gzip
 * input: each shard's lines are written as a gzip object of the stage, and the part reads that.
 */
export async function planBucketParts(
  io: BucketStageIo,
  request: { runId: string; inputKey: string; config: PackConfig; tokenizer: TokenizerRef },
): Promise<{ parts: ShardPart[]; plan: InputPlan }> {
  const split = new StoreArtifacts(io.store, request.runId, BUCKET_STAGE);
  const plan = await planInput(storeByteSource(io.store, request.inputKey), request.config.shardLines, {
    splitGzip: { sink: split, scratchPrefix: SCRATCH_PREFIX },
  });
  const objects = split.written();
  const parts = plan.shards.map((shard, index) => ({
    runId: request.runId,
    partIndex: index,
    partCount: plan.shards.length,
    inputKey: shard.object === null ? request.inputKey : objectKeyOf(objects, shard.object),
    gzip: plan.gzip,
    shard,
    config: request.config,
    tokenizer: request.tokenizer,
    scratchPrefix: SCRATCH_PREFIX,
  }));
  return { parts, plan };
}

function objectKeyOf(objects: Record<string, ArtifactEntry>, name: string): string {
  const entry = objects[name];
  if (entry === undefined) throw new Error(`shard object ${name} was planned but not written`);
  return entry.key;
}

/** Packs one shard part, reading only its shard's bytes; its files go to the store as objects of the stage. */
export async function runBucketPart(
  io: BucketStageIo,
  part: ParsedPartPayloadOf<'corpus.bucket'>,
  encoder: TokenEncoder,
  onProgress?: (progress: ShardProgress) => void,
  signal?: AbortSignal,
): Promise<ShardPartResult> {
  const scratch = new StoreArtifacts(io.store, part.runId, BUCKET_STAGE);
  const report = await packShard({
    source: storeByteSource(io.store, part.inputKey),
    job: { input: part.inputKey, gzip: part.gzip, shard: part.shard, config: part.config, tokenizer: part.tokenizer, scratchPrefix: part.scratchPrefix },
    encoder,
    scratch,
    onProgress,
    signal,
  });
  return { report, files: scratch.written() };
}

/**
 * Merges every part (in shard order) into the final datasets, rejects and bucketing manifest.
 * `plan` is what `planBucketParts` returned (checked against `StoredInputPlan`: it may come back
 * from the job's stored data); the manifest names the input by its key's last segment.
 */
export async function mergeBucketParts(
  io: BucketStageIo,
  request: { runId: string; inputKey: string; config: PackConfig; tokenizer: TokenizerRef & { name: string; vocabSize: number }; plan: InputPlan; parts: ShardPartResult[] },
): Promise<{ manifest: BucketManifest; artifacts: ArtifactEntry[] }> {
  const plan = StoredInputPlan.parse(request.plan);
  const known = Object.assign({}, ...request.parts.map((part) => part.files)) as Record<string, ArtifactEntry>;
  const scratch = new StoreArtifacts(io.store, request.runId, BUCKET_STAGE, known);
  const out = new StoreArtifacts(io.store, request.runId, BUCKET_STAGE);
  try {
    const manifest = await mergeShards({
      reports: request.parts.map((part) => part.report),
      input: { ...plan, path: request.inputKey },
      config: request.config,
      tokenizer: request.tokenizer,
      scratch,
      out,
    });
    return { manifest, artifacts: Object.values(out.written()) };
  } catch (error) {
    if (error instanceof RejectRateExceededError) throw new RejectedInputError(error, Object.values(out.written()));
    throw error;
  }
}

/** The merge stopped on the reject rate; `artifacts` are what it wrote first (`rejects.jsonl`). */
export class RejectedInputError extends Error {
  constructor(
    override readonly cause: RejectRateExceededError,
    readonly artifacts: ArtifactEntry[],
  ) {
    super(cause.message);
    this.name = 'RejectedInputError';
  }
}

/** The stage result: the figures a person reads first, from the bucketing manifest. */
export function bucketStageResult(manifest: BucketManifest): ResultOf<'corpus.bucket'> {
  return {
    strategy: manifest.config.strategy,
    documentsIn: manifest.input.documentsIn,
    kept: manifest.input.kept,
    rejected: manifest.input.rejected,
    rejectsByReason: manifest.input.rejectsByReason,
    tokens: manifest.totals.tokens,
    ...ratios(manifest.totals),
    sequencesPerBucket: Object.fromEntries(manifest.buckets.map((bucket) => [String(bucket.length), bucket.sequences])),
    categories: manifest.categories,
    shards: manifest.input.shards,
    tokenizer: manifest.tokenizer.name,
  };
}
