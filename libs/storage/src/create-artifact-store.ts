import type { ArtifactStore } from './artifact-store';
import { LocalDirectoryStore } from './local-directory-store';
import { ArtifactStoreOptions, parseStoreOptions } from './options';
import { S3ArtifactStore } from './s3-artifact-store';

/** Builds the store the options name; throws a TypeError naming every invalid option. */
export function createArtifactStore(options: ArtifactStoreOptions): ArtifactStore {
  const parsed = parseStoreOptions(ArtifactStoreOptions, options);
  if (parsed.kind === 'local') return new LocalDirectoryStore(parsed.root);
  const { kind: _kind, ...s3 } = parsed;
  return new S3ArtifactStore(s3);
}
