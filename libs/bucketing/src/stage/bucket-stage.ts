import {
  type ArtifactEntry,
  type BucketManifest,
  type PartPayloadOf,
  type PackConfig,
  type PartResultOf,
  type ResultOf,
  type TokenizerRef,
} from '@xyp/contracts';
import type { ArtifactStore } from '@xyp/storage';
import type { TextTokenizer } from '@xyp/tokenizer';
import { tokenDtypeFor } from '../core/config';
import { ratios } from '../core/metrics';
import type { TokenEncoder } from '../core/encoder';
import { planInput, type InputPlan } from '../io/jsonl';
import { mergeShards } from '../io/merge';
import { packShard, type ShardProgress } from '../io/shard';
import { materializeInput } from './input-cache';
import { StoreArtifacts } from './store-artifacts';

/**
 * corpus.bucket on the platform: the stage job plans shard parts over the committed input,
 * each part job packs its lines into the artifact store, and the stage job merges the
 * parts into the final datasets. The same functions as `bucketCorpus`, with the store in
 * place of a directory and BullMQ jobs in place of a worker pool.
 */
export const BUCKET_STAGE = 'corpus.bucket';
const SCRATCH_PREFIX = '.shards';

export interface BucketStageIo {
  store: ArtifactStore;
  /** Where worker machines keep local copies of inputs (shard readers seek in them). */
  cacheDir: string;
}

type ShardPart = PartPayloadOf<'corpus.bucket'>;
type ShardPartResult = PartResultOf<'corpus.bucket'>;

export function tokenizerRef(spec: string, tokenizer: TextTokenizer, config: PackConfig): TokenizerRef & { name: string; vocabSize: number } {
  if (config.appendEod && tokenizer.eosId === null) {
    throw new Error(`tokenizer ${spec} has no known end-of-document token; set config.appendEod to false`);
  }
  return { spec, name: tokenizer.name, vocabSize: tokenizer.vocabSize, eodId: tokenizer.eosId, dtype: tokenDtypeFor(tokenizer.vocabSize) };
}

/** Splits the input into shard parts of `config.shardLines` lines (never by worker count). */
export async function planBucketParts(
  io: BucketStageIo,
  request: { runId: string; inputKey: string; config: PackConfig; tokenizer: TokenizerRef },
): Promise<{ parts: ShardPart[]; plan: InputPlan; inputPath: string }> {
  const inputPath = await materializeInput(io.store, request.inputKey, io.cacheDir);
  const plan = await planInput(inputPath, request.config.shardLines);
  const parts = plan.shards.map((shard, index) => ({
    runId: request.runId,
    partIndex: index,
    partCount: plan.shards.length,
    inputKey: request.inputKey,
    gzip: plan.gzip,
    shard,
    config: request.config,
    tokenizer: request.tokenizer,
    scratchPrefix: SCRATCH_PREFIX,
  }));
  return { parts, plan, inputPath };
}

/** Packs one shard part; its files go to the store as objects of the stage. */
export async function runBucketPart(
  io: BucketStageIo,
  part: ShardPart & { config: PackConfig },
  encoder: TokenEncoder,
  onProgress?: (progress: ShardProgress) => void,
): Promise<ShardPartResult> {
  const input = await materializeInput(io.store, part.inputKey, io.cacheDir);
  const scratch = new StoreArtifacts(io.store, part.runId, BUCKET_STAGE);
  const report = await packShard({
    job: { input, gzip: part.gzip, shard: part.shard, config: part.config, tokenizer: part.tokenizer, scratchPrefix: part.scratchPrefix },
    encoder,
    scratch,
    onProgress,
  });
  return { report, files: scratch.written() };
}

/** Merges every part (in shard order) into the final datasets, rejects and bucketing manifest. */
export async function mergeBucketParts(
  io: BucketStageIo,
  request: { runId: string; config: PackConfig; tokenizer: TokenizerRef & { name: string; vocabSize: number }; plan: InputPlan; inputPath: string; parts: ShardPartResult[] },
): Promise<{ manifest: BucketManifest; artifacts: ArtifactEntry[] }> {
  const known = Object.assign({}, ...request.parts.map((part) => part.files)) as Record<string, ArtifactEntry>;
  const scratch = new StoreArtifacts(io.store, request.runId, BUCKET_STAGE, known);
  const out = new StoreArtifacts(io.store, request.runId, BUCKET_STAGE);
  const manifest = await mergeShards({
    reports: request.parts.map((part) => part.report),
    input: { ...request.plan, path: request.inputPath },
    config: request.config,
    tokenizer: request.tokenizer,
    scratch,
    out,
  });
  return { manifest, artifacts: Object.values(out.written()) };
}

/** The stage result: the figures a person reads first, from the bucketing manifest. */
export function bucketStageResult(manifest: BucketManifest): ResultOf<'corpus.bucket'> {
  return {
    strategy: manifest.config.strategy,
    docs: manifest.input.documentsIn,
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
