import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type BucketManifest, type PackConfig, type ShardJob, ShardReport, type TokenEncoder, type TokenizerRef } from '@xyp/packing';
import { isGzipFile, planInput } from './jsonl';
import { ShardMerger } from './merge';
import { packShard, type ShardProgress } from './shard';
import { DirectoryStore, type ArtifactScratch, type ArtifactSink } from './sink';

/** Runs one shard job somewhere (this process, a child process, a queue worker) and returns its report. */
export type ShardRunner = (job: ShardJob) => Promise<ShardReport>;

/** Runs shard jobs in this process, with the given encoder, writing into `scratch`. */
export function inProcessRunner(encoder: TokenEncoder, scratch: ArtifactSink, onProgress?: (progress: ShardProgress) => void): ShardRunner {
  return (job) => packShard({ job, encoder, scratch, onProgress });
}

export interface BucketCorpusOptions {
  /** Path of the input JSONL (plain or gzip). */
  input: string;
  config: PackConfig;
  tokenizer: TokenizerRef & { name: string; vocabSize: number };
  /** Final outputs: datasets, sidecars, `rejects.jsonl`, `manifest.json`. */
  out: ArtifactSink;
  /**
   * Shard outputs until merged (then removed); may be the same store as `out`. A gzip input is
   * split into one file per shard here when this is a `DirectoryStore` (else in a temporary
   * directory), so shard jobs in other processes can read them by path.
   */
  scratch: ArtifactScratch;
  /** Prefix of shard outputs in `scratch`. Default `.shards`. */
  scratchPrefix?: string;
  runShard: ShardRunner;
  /** Shard jobs in flight at once (the number of workers). Output does not depend on it. */
  concurrency?: number;
  /** Keep shard outputs after the run, successful or not (default: remove them). */
  keepShards?: boolean;
  onShardDone?: (report: ShardReport, done: number, total: number) => void;
}

export interface BucketCorpusResult {
  manifest: BucketManifest;
  reports: ShardReport[];
  /** Wall time of planning, shards and merge. */
  wallMs: number;
  planMs: number;
  /** The part of the merge left after the last shard finished. */
  mergeMs: number;
}

/**
 * A whole bucketing run: plan shards of `shardLines` lines (fixed by configuration, never by
 * the worker count), run every shard job with at most `concurrency` in flight while a
 * `ShardMerger` appends finished shards in order, then complete the merge.
 * The shard plan, each shard's output and the merge order are independent of scheduling, so
 * the output bytes are the same for any number of workers.
 */
export async function bucketCorpus(options: BucketCorpusOptions): Promise<BucketCorpusResult> {
  const started = performance.now();
  const { input } = options;
  if (!existsSync(input)) throw new Error(`input file not found: ${input}`);
  if (!statSync(input).isFile()) throw new Error(`input is not a file: ${input}`);
  const scratchPrefix = options.scratchPrefix ?? '.shards';
  await options.scratch.remove(scratchPrefix);
  // Gzip input: every shard gets its own gzip file while planning, instead of inflating the input from the start.
  const splitDir = !(options.scratch instanceof DirectoryStore) && (await isGzipFile(input)) ? await mkdtemp(join(tmpdir(), 'xyp-bucket-split-')) : null;
  const split = splitDir !== null ? new DirectoryStore(splitDir) : options.scratch instanceof DirectoryStore ? options.scratch : null;
  try {
    return await runPlanned(options, input, scratchPrefix, split, started);
  } finally {
    if (splitDir !== null) await rm(splitDir, { recursive: true, force: true });
  }
}

async function runPlanned(options: BucketCorpusOptions, input: string, scratchPrefix: string, split: DirectoryStore | null, started: number): Promise<BucketCorpusResult> {
  const { config } = options;
  const plan = await planInput(input, config.shardLines, split === null ? {} : { splitGzip: { sink: split, scratchPrefix } });
  const planMs = performance.now() - started;

  const jobs: ShardJob[] = plan.shards.map((shard) => ({
    input: shard.object !== null && split !== null ? split.path(shard.object) : input,
    gzip: plan.gzip,
    shard,
    config,
    tokenizer: options.tokenizer,
    scratchPrefix,
  }));
  const merger = await ShardMerger.open({ config, tokenizer: options.tokenizer, scratch: options.scratch, out: options.out, shardCount: jobs.length });
  const reports: ShardReport[] = new Array(jobs.length);
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 1, jobs.length || 1));
  let next = 0;
  let done = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < jobs.length) {
      const job = jobs[next++];
      try {
        reports[job.shard.index] = ShardReport.parse(await options.runShard(job));
      } catch (error) {
        failed = true;
        throw error;
      }
      merger.add(reports[job.shard.index]);
      options.onShardDone?.(reports[job.shard.index], ++done, jobs.length);
    }
  };
  try {
    const lanes = await Promise.allSettled(Array.from({ length: concurrency }, lane));
    const failure = lanes.find((lane): lane is PromiseRejectedResult => lane.status === 'rejected');
    if (failure !== undefined) {
      await merger.abort();
      throw failure.reason;
    }
    const mergeStart = performance.now();
    const manifest = await merger.finish({ ...plan, path: input });
    const now = performance.now();
    return { manifest, reports, wallMs: now - started, planMs, mergeMs: now - mergeStart };
  } finally {
    if (!options.keepShards) await options.scratch.remove(scratchPrefix);
  }
}

