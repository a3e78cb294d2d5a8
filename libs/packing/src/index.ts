// Pure packing: plain functions over plain data, no I/O, no Node built-ins (type:algorithm).
export { CATEGORY_MIXING, DEFAULT_BUCKET_LENGTHS, PackConfig, parsePackConfig, tokenDtypeFor, type CategoryMixing, type PackConfigInput, type TokenDtype } from './config';
export { CountTree } from './count-tree';
export { REJECT_REASONS, parseCorpusLine, rejectRate, type LineResult, type RejectReason, type RejectRecord } from './documents';
export type { TokenEncoder } from './encoder';
export { Growable } from './growable';
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
} from './jobs';
export { BucketManifest } from './manifest';
export {
  addCounts,
  addStats,
  emptyCounts,
  emptyStats,
  ratios,
  type CompositionCounts,
  type CompositionRatios,
  type CompositionStats,
} from './metrics';
export { simulatePacking, type LengthRecord, type SimulationOptions } from './simulate';
export { BestFitDecreasingStrategy } from './bfd-strategy';
export { BestFitDecreasingBucketsStrategy } from './bfd-buckets-strategy';
export { packBestFitDecreasing } from './best-fit';
export { BucketStrategy } from './bucket-strategy';
export { FixedStrategy } from './fixed-strategy';
export { createStrategy } from './strategies';
export { STRATEGY_NAMES, splitLongDocuments, type PackedSequence, type PackingStrategy, type Piece, type StrategyName } from './strategy';
export { decodeCategorySidecar, decodePieceSidecar, type PieceOrigin } from './sidecars';
export {
  WindowPacker,
  compareCodeUnits,
  planGroups,
  type EmittedPiece,
  type EmittedSequence,
  type PackItem,
  type WindowOutput,
  type WindowPackerOptions,
} from './window';
export { Windowing, type CompletedWindow, type WindowKey } from './windowing';
// Long documents: a streamed line's fields, chunked encoding, whole pieces written at once.
export { ChunkedEncoder, type ChunkedEncoderOptions } from './chunked-encoder';
export { LongDocuments } from './long-documents';
export { StreamedJsonLine, type StreamedLineResult } from './streamed-line';
export { cutText, findCut, type TextCut } from './text-chunks';
