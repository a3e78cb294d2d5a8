// I/O: streaming JSONL, Megatron indexed datasets, sinks, shard jobs and merge (src/io).
export {
  DTYPE_CODES,
  INDEX_HEADER_BYTES,
  INDEX_MAGIC,
  IndexedDatasetReader,
  IndexedDatasetWriter,
  binName,
  concatIndexedDatasets,
  writeConcatenatedIndex,
  encodeIndexHeader,
  idxName,
  parseIndex,
  type IndexedDatasetSummary,
  type MegatronDtype,
  type MegatronIndex,
  type RandomAccess,
} from './io/indexed-dataset';
export { bufferByteSource, fileByteSource, isGzipSource, toByteSource, type ByteSource } from './io/byte-source';
export { GzipShardSplitter, shardInputName, type GzipSplitTarget, type SplitObject } from './io/gzip-split';
export { isGzipFile, planInput, readLines, type InputPlan, type PlanInputOptions, type RawLine, type ReadLinesOptions } from './io/jsonl';
export { RejectRateExceededError, ShardMerger, mergeShards, type MergeOptions, type MergerOptions } from './io/merge';
export { bucketCorpus, inProcessRunner, type BucketCorpusOptions, type BucketCorpusResult, type ShardRunner } from './io/pipeline';
export { packShard, type PackShardOptions, type ShardProgress } from './io/shard';
// Per-category Megatron datasets of a bucketing run, for blends by weight (Megatron --data-path).
export {
  CATEGORY_SPLIT_INDEX,
  CategoryBucketEntry,
  CategorySplitIndex,
  categoryDatasetPrefix,
  categorySlug,
  splitBucketsByCategory,
  type CategorySplitOptions,
  type CategorySplitResult,
} from './io/category-split';
// Long documents: streamed lines, chunked encoding, whole pieces written at once.
export type { LineConsumer, LineStreamOptions } from './io/jsonl';
export { StreamedDocument, TokenSpill, describeDocumentProgress, type StreamedDocumentOptions, type StreamedDocumentProgress, type StreamedDocumentResult } from './io/long-document';
export {
  DirectoryStore,
  HashingWriter,
  MemoryStore,
  writeArtifact,
  type ArtifactScratch,
  type ArtifactSink,
  type ArtifactSource,
  type ArtifactWriter,
  type WrittenFile,
} from './io/sink';

// The corpus.bucket stage on the platform: artifact store adapters, shard parts, merge (src/stage).
export * from './stage';

// Pure packing lives in @xyp/packing (type:algorithm), re-exported here for existing importers; new code
// imports it from there. Kept last: Nx's boundary-rule fixer follows re-exports in order and cannot
// open a non-relative one.
export * from '@xyp/packing';
