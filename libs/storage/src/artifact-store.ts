import type { Readable } from 'node:stream';
import type { ArtifactEntry, StageManifest } from '@xyp/contracts';

/** What `putObject` accepts: a stream is consumed once, chunk by chunk, and never held whole. */
export type ArtifactBody = Readable | Buffer | string;

/**
 * Bytes `[start, end)` of an object: `end` is exclusive and defaults to the object's size. Both
 * must be integers with `0 <= start <= end <= size`; `start === end` is an empty read.
 */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface CommitResult {
  /** False when another attempt committed this stage first; `manifest` is then that attempt's. */
  committed: boolean;
  manifest: StageManifest;
}

/**
 * Where stages keep their outputs. Keys follow `@xyp/contracts`: objects are content-addressed
 * under `runs/<runId>/<stage>/objects/<sha256>` and a stage is done once
 * `runs/<runId>/<stage>/manifest.json` exists. Every key argument is checked; a key that is
 * absolute, contains `..`, backslashes or empty segments throws `InvalidArtifactKeyError`.
 */
export interface ArtifactStore {
  /**
   * Streams `body` to a temporary key while hashing it, then moves it to its content-addressed
   * key. Writing the same bytes again (a retried job) lands on the same key and stores nothing new.
   */
  putObject(runId: string, stage: string, name: string, body: ArtifactBody, contentType?: string): Promise<ArtifactEntry>;
  /**
   * Streams an object, or only the bytes of `range` (a file read at an offset locally, a `Range`
   * GET on S3: nothing outside the range is transferred). Rejects with `ArtifactNotFoundError`
   * when the key does not exist and with `InvalidByteRangeError`, naming the key, the range and
   * the object's size, when the range is not within the object.
   */
  getObjectStream(key: string, range?: ByteRange): Promise<Readable>;
  /** Reads a whole object into memory; use `getObjectStream` for large ones. */
  getObject(key: string): Promise<Buffer>;
  statObject(key: string): Promise<{ size: number } | null>;
  /**
   * Validates the manifest, checks that every artifact exists with its recorded size, and writes
   * the manifest last. The first commit of a stage wins: later ones return `committed: false`
   * and the manifest already stored, which makes a retried job exactly-once in effect.
   */
  commitManifest(manifest: StageManifest): Promise<CommitResult>;
  readManifest(runId: string, stage: string): Promise<StageManifest | null>;
  /** Committed manifests of a run (or of one of its stages), sorted by stage name. */
  listManifests(runId: string, stage?: string): Promise<StageManifest[]>;
  /** Deletes every key of a run, committed or not. Removing an unknown run is not an error. */
  removeRun(runId: string): Promise<void>;
  /** Where the store points, for logs; never includes credentials. */
  describe(): string;
  /** Closes connections the store opened (the S3 store's commit lock); the store is unusable after. */
  close?(): Promise<void>;
}

/**
 * A pause a test puts between a commit's check and its write, to race committers
 * deterministically (every committer past its check before any writes).
 */
export interface CommitHooks {
  beforeManifestWrite?(key: string): Promise<void>;
}
