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
 * A ranged read whose range is not integers `0 <= start <= end <= size` of the object.
 * `size` is the object's size when the store knew it.
 */
export class InvalidByteRangeError extends Error {
  override readonly name = 'InvalidByteRangeError';
  constructor(
    readonly key: string,
    readonly range: { start: number; end?: number },
    reason: string,
    readonly size?: number,
  ) {
    super(`invalid byte range [${range.start}, ${range.end ?? 'end'}) of ${JSON.stringify(key)}${size === undefined ? '' : ` (${size} bytes)`}: ${reason}`);
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
