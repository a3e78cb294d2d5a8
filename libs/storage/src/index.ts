export type { ArtifactBody, ArtifactStore, ByteRange, CommitHooks, CommitResult } from './artifact-store';
export { RedisCommitLock, type CommitLease } from './commit-lock';
export { ArtifactNotFoundError, InvalidArtifactKeyError, InvalidByteRangeError, InvalidManifestError } from './errors';
export { assertKey } from './keys';
export { LocalDirectoryStore } from './local-directory-store';
export { scopeStoreToInstance } from './instance-scoped-store';
export { S3ArtifactStore, type ManifestCommitMode } from './s3-artifact-store';
export {
  ArtifactStoreOptions,
  DEFAULT_PART_SIZE,
  LocalStoreOptions,
  MAX_PART_SIZE,
  MIN_PART_SIZE,
  S3StoreOptions,
} from './options';
export { createArtifactStore } from './create-artifact-store';
export { uploadInParts, type PartUploadOptions } from './part-upload';
export { ARTIFACT_STORE, StorageModule, type StorageModuleAsyncOptions } from './storage.module';
