/** A key (or the run id / stage it is built from) that could escape its run or the store root. */
export class InvalidArtifactKeyError extends Error {
  override readonly name = 'InvalidArtifactKeyError';
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`invalid artifact key ${JSON.stringify(key)}: ${reason}`);
  }
}

/** Reading an object that does not exist. `statObject` returns null instead of throwing this. */
export class ArtifactNotFoundError extends Error {
  override readonly name = 'ArtifactNotFoundError';
  constructor(readonly key: string) {
    super(`artifact not found: ${JSON.stringify(key)}`);
  }
}

/**
 * A manifest that fails its schema, lists objects that are missing or of the wrong size,
 * or a stored manifest that no longer parses. `problems` holds one line per defect.
 */
export class InvalidManifestError extends Error {
  override readonly name = 'InvalidManifestError';
  constructor(
    readonly key: string,
    readonly problems: string[],
  ) {
    super(`invalid manifest ${JSON.stringify(key)}: ${problems.join('; ')}`);
  }
}
