export { StoreArtifacts } from './store-artifacts';
export { materializeInput } from './input-cache';
export { BUCKET_STAGE, bucketStageResult, mergeBucketParts, planBucketParts, runBucketPart, tokenizerRef, type BucketStageIo } from './bucket-stage';
export { inspectCorpus } from './inspect-corpus';
