import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { Client, CopyDestinationOptions, CopySourceOptions, S3Error, type BucketItem } from 'minio';
import { manifestKey, manifestRef, objectKey, type ArtifactEntry, type StageManifest } from '@xyp/contracts';
import type { ArtifactBody, ArtifactStore, ByteRange, CommitHooks, CommitResult } from './artifact-store';
import { RedisCommitLock } from './commit-lock';
import { ArtifactNotFoundError, InvalidByteRangeError } from './errors';
import { assertKey, runPrefix, stagePrefix, tempKey } from './keys';
import { DEFAULT_PART_SIZE, parseStoreOptions, S3StoreOptions } from './options';
import { uploadInParts } from './part-upload';
import {
  assertArtifactsStored,
  checkPutArguments,
  checkRange,
  listStageManifests,
  DEFAULT_CONTENT_TYPE,
  Digest,
  entryFor,
  parseManifestForCommit,
  parseStoredManifest,
  rangeEnd,
  serializeManifest,
} from './store-support';

/** DeleteObjects accepts at most this many keys per request. */
const DELETE_BATCH = 1000;

function isNotFound(error: unknown): boolean {
  // HEAD responses carry no body, so minio reports them as `NotFound` rather than `NoSuchKey`.
  return error instanceof S3Error && (error.code === 'NoSuchKey' || error.code === 'NotFound');
}

/** Bytes `[skip, skip + length)` of a stream; fails with `tooShort()` when the stream ends first. */
async function* sliceBytes(stream: Readable, skip: number, length: number | undefined, tooShort: () => Error): AsyncGenerator<Buffer> {
  let toSkip = skip;
  let left = length ?? Number.POSITIVE_INFINITY;
  try {
    for await (const raw of stream) {
      let chunk = raw as Buffer;
      if (toSkip >= chunk.length) {
        toSkip -= chunk.length;
        continue;
      }
      chunk = chunk.subarray(toSkip);
      toSkip = 0;
      if (chunk.length >= left) {
        yield chunk.subarray(0, left);
        return;
      }
      left -= chunk.length;
      yield chunk;
    }
    if (length !== undefined) throw tooShort();
  } finally {
    stream.destroy();
  }
}

/** How a manifest commit is made atomic on this endpoint (see `S3StoreOptions.conditionalWrites`). */
export type ManifestCommitMode = 'conditional' | 'lock' | 'check-then-put';

/** How long a committer waits for another one's commit lock before giving up. */
const LOCK_WAIT_MS = 60_000;
/** Where the one-time probe for conditional writes puts its object (outside every run). */
const PROBE_PREFIX = 'xyp-probes/conditional-write/';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function s3Code(error: unknown): string | undefined {
  return error instanceof S3Error ? error.code : undefined;
}

/**
 * The store on S3 or MinIO through the `minio` client. The bucket is created on first use.
 *
 * Uploads go through `uploadInParts`, not `Client.putObject` for streams: at most `partSize` bytes
 * are held; a body that ends within one part is sent with a single PUT, a longer one as a multipart
 * upload of `partSize` parts.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly client: Client;
  readonly bucket: string;
  private readonly options: S3StoreOptions;
  private readonly partSize: number;
  private bucketReady: Promise<void> | undefined;
  private commitMode: Promise<ManifestCommitMode> | undefined;
  private readonly lock: RedisCommitLock | undefined;
  private warnedUnsafe = false;

  constructor(
    options: Omit<S3StoreOptions, 'kind'>,
    private readonly hooks: CommitHooks = {},
  ) {
    const parsed = parseStoreOptions(S3StoreOptions, { ...options, kind: 's3' });
    if (parsed.conditionalWrites === 'off' && parsed.commitLock === undefined) {
      throw new TypeError('invalid artifact store options: commitLock: required when conditionalWrites is off (the manifest commit needs a lock)');
    }
    this.options = parsed;
    this.lock = parsed.commitLock ? new RedisCommitLock(parsed.commitLock.redisUrl, parsed.commitLock.prefix, parsed.commitLock.ttlMs) : undefined;
    this.bucket = parsed.bucket;
    this.partSize = parsed.partSize ?? DEFAULT_PART_SIZE;
    this.client = new Client({
      endPoint: parsed.endPoint,
      port: parsed.port,
      useSSL: parsed.useSSL,
      accessKey: parsed.accessKey,
      secretKey: parsed.secretKey,
      region: parsed.region,
    });
  }

  describe(): string {
    return `s3://${this.bucket}@${this.options.endPoint}:${this.options.port}`;
  }

  /** Creates the bucket when missing; every operation awaits this, and a failure is retried next call. */
  ensureBucket(): Promise<void> {
    this.bucketReady ??= this.createBucketIfMissing().catch((error: unknown) => {
      this.bucketReady = undefined;
      throw error;
    });
    return this.bucketReady;
  }

  async putObject(runId: string, stage: string, name: string, body: ArtifactBody, contentType?: string): Promise<ArtifactEntry> {
    checkPutArguments(runId, stage, name);
    const type = contentType ?? DEFAULT_CONTENT_TYPE;
    await this.ensureBucket();
    const temp = tempKey(runId, stage);
    const digest = new Digest();
    try {
      await this.uploadTemp(temp, body, digest, type);
      const sha256 = digest.hex();
      const key = objectKey(runId, stage, sha256);
      if ((await this.statObject(key)) === null) {
        // composeObject is a plain CopyObject up to 5 GiB and a multipart copy above, where a
        // single CopyObject would be refused. REPLACE sets the content type on either path.
        await this.client.composeObject(
          new CopyDestinationOptions({ Bucket: this.bucket, Object: key, MetadataDirective: 'REPLACE', Headers: { 'Content-Type': type } }),
          [new CopySourceOptions({ Bucket: this.bucket, Object: temp })],
        );
      }
      return entryFor(name, key, sha256, digest.size, contentType);
    } finally {
      // A temp object left behind by a failed delete is garbage under the run's prefix;
      // removeRun deletes it and listManifests never reads it, so the put still stands.
      await this.client.removeObject(this.bucket, temp).catch(() => undefined);
    }
  }

  async getObjectStream(key: string, range?: ByteRange): Promise<Readable> {
    assertKey(key);
    if (range !== undefined) checkRange(key, range);
    await this.ensureBucket();
    if (range !== undefined) return this.getRange(key, range);
    try {
      return await this.client.getObject(this.bucket, key);
    } catch (error) {
      if (isNotFound(error)) throw new ArtifactNotFoundError(key);
      throw error;
    }
  }

  /**
   * One `Range` GET (`getPartialObject`): only the range's bytes cross the network. S3 answers
   * 416 for a start at or past the end and silently shortens an end past it; both become
   * `InvalidByteRangeError` here (a HEAD is sent only then, and for empty ranges). A server that
   * sends more than was asked (s3rver serves the whole object for `bytes=0-0`) is cut to the range.
   */
  private async getRange(key: string, range: ByteRange): Promise<Readable> {
    const checkedBySize = async (): Promise<Readable> => {
      const stats = await this.statObject(key);
      if (stats === null) throw new ArtifactNotFoundError(key);
      rangeEnd(key, range, stats.size);
      return Readable.from([]);
    };
    // HTTP cannot ask for zero bytes.
    if (range.end === range.start) return checkedBySize();
    let response: Readable;
    try {
      response = await this.client.getPartialObject(this.bucket, key, range.start, range.end === undefined ? 0 : range.end - range.start);
    } catch (error) {
      if (isNotFound(error)) throw new ArtifactNotFoundError(key);
      // Past the end, or an empty read exactly at the end of the object (which is valid).
      if (error instanceof S3Error && error.code === 'InvalidRange') return checkedBySize();
      throw error;
    }
    // `bytes <first>-<last>/<size>` on a 206; none on a 200 (the whole object).
    const served = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String((response as Partial<IncomingMessage>).headers?.['content-range'] ?? ''));
    const servedStart = served === null ? 0 : Number(served[1]);
    const servedEnd = served === null ? undefined : Number(served[2]) + 1;
    const size = served === null || served[3] === '*' ? undefined : Number(served[3]);
    const pastEnd = () => new InvalidByteRangeError(key, range, 'end is past the end of the object', size);
    if (range.end !== undefined && servedEnd !== undefined && servedEnd < range.end) {
      response.destroy();
      throw pastEnd();
    }
    if (servedStart > range.start) {
      response.destroy();
      throw new Error(`${key}: asked for bytes from ${range.start}, the server sent them from ${servedStart}`);
    }
    const length = range.end === undefined ? undefined : range.end - range.start;
    if (servedStart === range.start && (length === undefined || servedEnd === range.end)) return response;
    return Readable.from(sliceBytes(response, range.start - servedStart, length, pastEnd));
  }

  async getObject(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.getObjectStream(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async statObject(key: string): Promise<{ size: number } | null> {
    assertKey(key);
    await this.ensureBucket();
    try {
      const stats = await this.client.statObject(this.bucket, key);
      return { size: stats.size };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /**
   * Publishes the manifest once, whatever the number of concurrent committers: exactly one gets
   * `committed: true`, every other one the winner's manifest. How depends on the endpoint
   * (`manifestCommitMode`): a conditional PUT (`If-None-Match: *`; a 412 means another commit won),
   * else a Redis lock per manifest key taken before the check and held until the PUT is done.
   */
  async commitManifest(input: StageManifest): Promise<CommitResult> {
    const { manifest, key } = parseManifestForCommit(input);
    await this.ensureBucket();
    await assertArtifactsStored(manifest, key, (artifactKey) => this.statObject(artifactKey));
    const mode = await this.manifestCommitMode();
    if (mode === 'conditional') return this.commitConditionally(manifest, key);
    if (mode === 'lock') return this.commitUnderLock(manifest, key);
    if (!this.warnedUnsafe) {
      this.warnedUnsafe = true;
      process.emitWarning(`${this.describe()} ignores conditional writes and no commit lock is configured: two concurrent commits of one manifest can both succeed`);
    }
    const existing = await this.readManifest(manifest.runId, manifestRef(manifest));
    if (existing !== null) return { committed: false, manifest: existing };
    await this.hooks.beforeManifestWrite?.(key);
    await this.putManifest(key, manifest);
    return { committed: true, manifest };
  }

  /**
   * `conditional` where the endpoint refuses a second `If-None-Match: *` PUT of a key (probed once
   * with `conditionalWrites: auto`, assumed with `on`), else `lock` with a commit lock configured,
   * else `check-then-put` (racy; warned about once).
   */
  manifestCommitMode(): Promise<ManifestCommitMode> {
    this.commitMode ??= (async (): Promise<ManifestCommitMode> => {
      const setting = this.options.conditionalWrites ?? 'auto';
      if (setting === 'on') return 'conditional';
      if (setting === 'auto' && (await this.honoursConditionalWrites())) return 'conditional';
      return this.lock ? 'lock' : 'check-then-put';
    })().catch((error: unknown) => {
      this.commitMode = undefined;
      throw error;
    });
    return this.commitMode;
  }

  /** Puts a probe object twice with `If-None-Match: *`: an endpoint that refuses the second honours the condition. */
  private async honoursConditionalWrites(): Promise<boolean> {
    await this.ensureBucket();
    const key = `${PROBE_PREFIX}${randomUUID()}`;
    const put = () => this.client.putObject(this.bucket, key, Buffer.from('probe'), 5, { 'If-None-Match': '*' });
    try {
      await put();
      await put();
      return false;
    } catch (error) {
      if (s3Code(error) === 'PreconditionFailed') return true;
      if (s3Code(error) === 'NotImplemented') return false;
      throw error;
    } finally {
      await this.client.removeObject(this.bucket, key).catch(() => undefined);
    }
  }

  private async putManifest(key: string, manifest: StageManifest, headers: Record<string, string> = {}): Promise<void> {
    const bytes = serializeManifest(manifest);
    await this.client.putObject(this.bucket, key, bytes, bytes.length, { 'Content-Type': 'application/json', ...headers });
  }

  private async commitConditionally(manifest: StageManifest, key: string): Promise<CommitResult> {
    await this.hooks.beforeManifestWrite?.(key);
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.putManifest(key, manifest, { 'If-None-Match': '*' });
        return { committed: true, manifest };
      } catch (error) {
        // 412: the manifest exists. 409: another conditional PUT of the key is in flight (AWS); look again.
        const code = s3Code(error);
        if (code !== 'PreconditionFailed' && !(code === 'ConditionalRequestConflict' && attempt < 10)) throw error;
        const existing = await this.readManifest(manifest.runId, manifestRef(manifest));
        if (existing !== null) return { committed: false, manifest: existing };
        if (code === 'PreconditionFailed') throw new Error(`manifest ${key}: the endpoint refused the write as existing, but it cannot be read`, { cause: error });
        await sleep(20 * attempt);
      }
    }
  }

  /**
   * Under the lock of the manifest's key: re-read after acquiring (the fencing check: a commit that
   * finished while this one waited is found), write, and release. A hold that expired before the
   * write is taken again; one that expired during it is settled by reading back what was stored.
   */
  private async commitUnderLock(manifest: StageManifest, key: string): Promise<CommitResult> {
    const lock = this.lock;
    if (lock === undefined) throw new Error(`manifest ${key}: no commit lock is configured`);
    const name = `${this.bucket}/${key}`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    const ref = manifestRef(manifest);
    for (;;) {
      const lease = await lock.tryAcquire(name);
      if (lease === undefined) {
        // The manifest is read only under the lock: a PUT in flight is not readable whole everywhere (s3rver).
        if (Date.now() > deadline) throw new Error(`manifest ${key}: its commit lock (${lock.keyFor(name)}) stayed taken for ${LOCK_WAIT_MS / 1000} s`);
        await sleep(10 + Math.random() * 40);
        continue;
      }
      let released = false;
      try {
        const existing = await this.readManifest(manifest.runId, ref);
        if (existing !== null) return { committed: false, manifest: existing };
        await this.hooks.beforeManifestWrite?.(key);
        if (!(await lease.extend())) continue;
        await this.putManifest(key, manifest);
        released = true;
        if (await lease.release()) return { committed: true, manifest };
        // The hold expired during the PUT: another committer may have written since. What is stored decides.
        const stored = await this.readManifest(manifest.runId, ref);
        if (stored !== null && !serializeManifest(stored).equals(serializeManifest(manifest))) return { committed: false, manifest: stored };
        return { committed: true, manifest };
      } finally {
        if (!released) await lease.release().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    await this.lock?.close();
  }

  async readManifest(runId: string, stage: string): Promise<StageManifest | null> {
    stagePrefix(runId, stage);
    let bytes: Buffer;
    try {
      bytes = await this.getObject(manifestKey(runId, stage));
    } catch (error) {
      if (error instanceof ArtifactNotFoundError) return null;
      throw error;
    }
    return parseStoredManifest(bytes, runId, stage);
  }

  async listManifests(runId: string, stage?: string): Promise<StageManifest[]> {
    if (stage === undefined) runPrefix(runId);
    else stagePrefix(runId, stage);
    await this.ensureBucket();
    return listStageManifests(this, runId, stage, async (prefix) => {
      const folders: string[] = [];
      // A non-recursive listing returns one common prefix per folder instead of every object.
      for await (const item of this.client.listObjectsV2(this.bucket, prefix, false) as AsyncIterable<BucketItem>) {
        if (item.prefix !== undefined) folders.push(item.prefix.slice(prefix.length).replace(/\/$/, ''));
      }
      return folders;
    });
  }

  async removeRun(runId: string): Promise<void> {
    const prefix = runPrefix(runId);
    await this.ensureBucket();
    let batch: string[] = [];
    for await (const item of this.client.listObjectsV2(this.bucket, prefix, true) as AsyncIterable<BucketItem>) {
      if (item.name === undefined) continue;
      batch.push(item.name);
      if (batch.length === DELETE_BATCH) {
        await this.removeKeys(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await this.removeKeys(batch);
  }

  private async removeKeys(keys: string[]): Promise<void> {
    // The typings promise `{ Error }` wrappers, but the client returns the DeleteResult's Error
    // elements themselves: one per key that could not be deleted.
    const failures: unknown[] = await this.client.removeObjects(this.bucket, keys);
    if (failures.length > 0) {
      throw new Error(`could not delete ${failures.length} of ${keys.length} objects, e.g. ${JSON.stringify(failures[0])}`);
    }
  }

  private async createBucketIfMissing(): Promise<void> {
    if (await this.client.bucketExists(this.bucket)) return;
    try {
      await this.client.makeBucket(this.bucket, this.options.region ?? 'us-east-1');
    } catch (error) {
      // Another process may create the bucket between our check and our create.
      if (error instanceof S3Error && error.code === 'BucketAlreadyOwnedByYou') return;
      throw error;
    }
  }

  /** Streams `body` to `key`, holding at most one part in memory (`uploadInParts`). */
  private uploadTemp(key: string, body: ArtifactBody, digest: Digest, contentType: string): Promise<void> {
    return uploadInParts(this.client, this.bucket, key, body, { partSize: this.partSize, contentType, onChunk: (chunk) => digest.update(chunk) });
  }
}
