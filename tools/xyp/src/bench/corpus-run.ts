import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  DirectoryStore,
  RejectRateExceededError,
  bucketCorpus,
  describeDocumentProgress,
  inProcessRunner,
  type ShardProgress,
} from '@xyp/bucketing';
import { parsePackConfig, ratios, tokenDtypeFor, type BucketManifest, type PackConfigInput } from '@xyp/packing';
import { loadTokenizer, type TextTokenizer } from '@xyp/tokenizer';
import { startWorkerPool } from './corpus-pool';
import { peakRssMb } from './corpus-rss';

export interface CorpusRunOptions {
  input: string;
  out: string;
  tokenizer: string;
  config: PackConfigInput;
  /** 1: shards run in this process; more: that many child processes. */
  workers: number;
  /** An already loaded tokenizer (same spec), to skip loading it again. */
  loaded?: TextTokenizer;
  progress?: (line: string) => void;
}

/** What `xyp corpus bucket --json` prints. */
export interface CorpusRunSummary {
  out: string;
  strategy: string;
  bucketLengths: number[];
  /** Documents packed (kept). */
  docs: number;
  /** Non-blank input lines: docs + rejected. */
  documentsIn: number;
  rejected: number;
  rejectsByReason: Record<string, number>;
  tokens: number;
  paddingRatio: number;
  truncationRatio: number;
  concatRatio: number;
  sequencesPerBucket: Record<string, number>;
  /** Tokens per second of the run itself (plan, shards, merge); tokenizer loading excluded. */
  tokensPerSecond: number;
  wallSeconds: number;
  /** Where the wall time went: input scan (line count, SHA-256), shard jobs (summed over shards, and the part of that spent waiting for the tokenizer), merge. */
  timings: { planSeconds: number; shardSeconds: number; tokenizerWaitSeconds: number; mergeSeconds: number };
  tokenizerLoadSeconds: number;
  workers: number;
  shards: number;
  tokenizer: { name: string; backend: string; vocabSize: number; dtype: string; eodTokenId: number | null };
  perBucket: Record<string, { sequences: number; pieces: number; tokens: number; paddingTokens: number; paddingRatio: number; truncationRatio: number; concatRatio: number }>;
  perCategory: Record<string, { documents: number; truncatedDocuments: number; sequences: number; tokens: number; paddingRatio: number; truncationRatio: number; concatRatio: number }>;
  /** Peak RSS of this process (and of each worker process when workers > 1), in MB. */
  peakRssMb: number;
  workerPeakRssMb?: number[];
  manifest: string;
}

function summarize(
  manifest: BucketManifest,
  options: CorpusRunOptions,
  extra: Pick<CorpusRunSummary, 'wallSeconds' | 'timings' | 'tokenizerLoadSeconds' | 'workers' | 'peakRssMb' | 'workerPeakRssMb'> & { backend: string },
): CorpusRunSummary {
  const { totals } = manifest;
  return {
    out: options.out,
    strategy: manifest.config.strategy,
    bucketLengths: manifest.config.bucketLengths,
    docs: manifest.input.kept,
    documentsIn: manifest.input.documentsIn,
    rejected: manifest.input.rejected,
    rejectsByReason: manifest.input.rejectsByReason,
    tokens: totals.tokens,
    ...ratios(totals),
    sequencesPerBucket: Object.fromEntries(manifest.buckets.map((bucket) => [String(bucket.length), bucket.sequences])),
    tokensPerSecond: Math.round(totals.tokens / extra.wallSeconds),
    wallSeconds: extra.wallSeconds,
    timings: extra.timings,
    tokenizerLoadSeconds: extra.tokenizerLoadSeconds,
    workers: extra.workers,
    shards: manifest.input.shards,
    tokenizer: { name: manifest.tokenizer.name, backend: extra.backend, vocabSize: manifest.tokenizer.vocabSize, dtype: manifest.tokenizer.dtype, eodTokenId: manifest.tokenizer.eodTokenId },
    perBucket: Object.fromEntries(
      manifest.buckets.map((bucket) => [
        String(bucket.length),
        {
          sequences: bucket.sequences,
          pieces: bucket.pieces,
          tokens: bucket.tokens,
          paddingTokens: bucket.paddingTokens,
          paddingRatio: bucket.paddingRatio,
          truncationRatio: bucket.truncationRatio,
          concatRatio: bucket.concatRatio,
        },
      ]),
    ),
    perCategory: Object.fromEntries(
      Object.entries(manifest.byCategory).map(([name, counts]) => [
        name,
        {
          documents: counts.documents,
          truncatedDocuments: counts.truncatedDocuments,
          sequences: counts.sequences,
          tokens: counts.tokens,
          paddingRatio: counts.paddingRatio,
          truncationRatio: counts.truncationRatio,
          concatRatio: counts.concatRatio,
        },
      ]),
    ),
    peakRssMb: extra.peakRssMb,
    ...(extra.workerPeakRssMb === undefined ? {} : { workerPeakRssMb: extra.workerPeakRssMb }),
    manifest: `${options.out}/manifest.json`,
  };
}

/**
 * One `corpus bucket` run: loads the tokenizer, runs `bucketCorpus` into `out` (shards in this
 * process or in child processes) and returns the summary.
 */
export async function runCorpusBucket(options: CorpusRunOptions): Promise<CorpusRunSummary> {
  const config = parsePackConfig(options.config);
  const loadStart = performance.now();
  const tokenizer = options.loaded ?? (await loadTokenizer(options.tokenizer));
  const tokenizerLoadSeconds = (performance.now() - loadStart) / 1000;
  if (config.appendEod && tokenizer.eosId === null) {
    throw new Error(`tokenizer ${options.tokenizer} has no known end-of-document token; pass --no-eod`);
  }
  const store = new DirectoryStore(options.out);
  const pool = options.workers > 1 ? await startWorkerPool({ workers: options.workers, tokenizer: options.tokenizer, scratchDir: store.root }) : null;
  let lastProgress = 0;
  const onProgress = (progress: ShardProgress) => {
    const now = performance.now();
    if (options.progress === undefined || now - lastProgress < 2000) return;
    lastProgress = now;
    const document = progress.document === undefined ? '' : `; ${describeDocumentProgress(progress.document)}`;
    options.progress(`shard ${progress.shard}: ${progress.lines} lines, ${progress.kept} kept, ${progress.rejected} rejected, ${progress.tokens} tokens${document}`);
  };
  try {
    const result = await bucketCorpus({
      input: options.input,
      config,
      tokenizer: { spec: options.tokenizer, name: tokenizer.name, vocabSize: tokenizer.vocabSize, eodId: tokenizer.eosId, dtype: tokenDtypeFor(tokenizer.vocabSize) },
      out: store,
      scratch: store,
      runShard: pool?.runShard ?? inProcessRunner(tokenizer, store, onProgress),
      concurrency: pool?.size ?? 1,
      onShardDone: (report, done, total) => options.progress?.(`shard ${report.shard.index} done (${done}/${total}): lines ${report.shard.startLine + 1}-${report.shard.endLine}, ${report.kept} kept, ${report.rejected} rejected`),
    });
    return summarize(result.manifest, options, {
      wallSeconds: result.wallMs / 1000,
      timings: {
        planSeconds: result.planMs / 1000,
        shardSeconds: result.reports.reduce((sum, report) => sum + report.timings.totalMs, 0) / 1000,
        tokenizerWaitSeconds: result.reports.reduce((sum, report) => sum + report.timings.tokenizerWaitMs, 0) / 1000,
        mergeSeconds: result.mergeMs / 1000,
      },
      tokenizerLoadSeconds,
      workers: options.workers,
      backend: tokenizer.backend,
      peakRssMb: peakRssMb(),
      workerPeakRssMb: pool?.peakRssMb(),
    });
  } catch (error) {
    if (error instanceof RejectRateExceededError) throw new Error(error.message.replace(error.rejectsName, join(store.root, error.rejectsName)), { cause: error });
    throw error;
  } finally {
    await pool?.close();
  }
}
