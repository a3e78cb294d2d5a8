export { StoreArtifacts } from './store-artifacts';
export { storeByteSource } from './store-byte-source';
export { BUCKET_STAGE, RejectedInputError, StoredInputPlan, bucketStageResult, mergeBucketParts, planBucketParts, runBucketPart, tokenizerRef, type BucketStageIo } from './bucket-stage';
export { inspectCorpus } from './inspect-corpus';
