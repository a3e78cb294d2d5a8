// Pure packing: no I/O, no Node built-ins (src/core).
export { CATEGORY_MIXING, DEFAULT_BUCKET_LENGTHS, PackConfig, parsePackConfig, tokenDtypeFor, type CategoryMixing, type PackConfigInput, type TokenDtype } from './core/config';
export { CountTree } from './core/count-tree';
export { REJECT_REASONS, parseCorpusLine, rejectRate, type LineResult, type RejectReason, type RejectRecord } from './core/documents';
export type { TokenEncoder } from './core/encoder';
export {
  CATEGORY_SIDECAR_SUFFIX,
  PIECE_SIDECAR_SUFFIX,
  CompositionCountsSchema,
  CompositionStatsSchema,
  ShardJob,
  ShardReport,
  ShardSpec,
  TokenizerRef,
  bucketPrefix,
  shardPrefix,
} from './core/jobs';
export { BucketManifest } from './core/manifest';
export {
  addCounts,
  addStats,
  emptyCounts,
  emptyStats,
  ratios,
  type CompositionCounts,
  type CompositionRatios,
  type CompositionStats,
} from './core/metrics';
export { simulatePacking, type LengthRecord, type SimulationOptions } from './core/simulate';
export { BestFitDecreasingStrategy } from './core/bfd-strategy';
export { BestFitDecreasingBucketsStrategy } from './core/bfd-buckets-strategy';
export { packBestFitDecreasing } from './core/best-fit';
export { BucketStrategy } from './core/bucket-strategy';
export { FixedStrategy } from './core/fixed-strategy';
export { createStrategy } from './core/strategies';
export { STRATEGY_NAMES, splitLongDocuments, type PackedSequence, type PackingStrategy, type Piece, type StrategyName } from './core/strategy';
export { decodeCategorySidecar, decodePieceSidecar, type PieceOrigin } from './core/sidecars';
export {
  WindowPacker,
  compareCodeUnits,
  planGroups,
  type EmittedPiece,
  type EmittedSequence,
  type PackItem,
  type WindowOutput,
  type WindowPackerOptions,
} from './core/window';
export { Windowing, type CompletedWindow, type WindowKey } from './core/windowing';

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
// Long documents: streamed lines, chunked encoding, whole pieces written at once.
export type { LineConsumer, LineStreamOptions } from './io/jsonl';
export { StreamedDocument, TokenSpill, describeDocumentProgress, type StreamedDocumentOptions, type StreamedDocumentProgress, type StreamedDocumentResult } from './io/long-document';
export { ChunkedEncoder, type ChunkedEncoderOptions } from './core/chunked-encoder';
export { LongDocuments } from './core/long-documents';
export { StreamedJsonLine, type StreamedLineResult } from './core/streamed-line';
export { cutText, findCut, type TextCut } from './core/text-chunks';
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
