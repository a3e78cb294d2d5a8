import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ArtifactEntry, InstanceKey, manifestKey, manifestRef, splitInstanceId, StageManifest, StageNameFormat } from '@xyp/contracts';
import type { ArtifactBody, ArtifactStore, ByteRange } from './artifact-store';
import { InvalidByteRangeError, InvalidManifestError } from './errors';
import { assertKey, runPrefix, stagePrefix } from './keys';

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/**
 * Yields the body as Buffers. Buffers and strings become a one-chunk stream so both stores have
 * a single write path; a stream is iterated, which respects its back-pressure and destroys it
 * when the consumer stops early.
 */
export async function* bodyChunks(body: ArtifactBody): AsyncGenerator<Buffer> {
  if (typeof body === 'string') {
    yield Buffer.from(body, 'utf8');
    return;
  }
  if (Buffer.isBuffer(body)) {
    yield body;
    return;
  }
  if (!(body instanceof Readable)) throw new TypeError('putObject body must be a Readable, a Buffer or a string');
  for await (const chunk of body as AsyncIterable<unknown>) {
    if (Buffer.isBuffer(chunk)) yield chunk;
    else if (typeof chunk === 'string') yield Buffer.from(chunk, 'utf8');
    else if (chunk instanceof Uint8Array) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else throw new TypeError('putObject body stream must yield Buffers, Uint8Arrays or strings');
  }
}

/** Checks what can be checked of a range before the object's size is known. */
export function checkRange(key: string, range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) throw new InvalidByteRangeError(key, range, 'start must be a non-negative integer');
  if (end !== undefined && (!Number.isSafeInteger(end) || end < 0)) throw new InvalidByteRangeError(key, range, 'end must be a non-negative integer');
  if (end !== undefined && end < start) throw new InvalidByteRangeError(key, range, 'end is before start');
}

/** Checks a range against the object's size; returns its exclusive end. */
export function rangeEnd(key: string, range: ByteRange, size: number): number {
  const end = range.end ?? size;
  if (range.start > size) throw new InvalidByteRangeError(key, range, 'start is past the end of the object', size);
  if (end > size) throw new InvalidByteRangeError(key, range, 'end is past the end of the object', size);
  return end;
}

/** Running sha256 and byte count of what has streamed through so far. */
export class Digest {
  private readonly hash = createHash('sha256');
  size = 0;

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}

/** Checks the arguments of `putObject` before any byte is consumed. */
export function checkPutArguments(runId: string, stage: string, name: string): void {
  stagePrefix(runId, stage);
  const parsed = ArtifactEntry.shape.name.safeParse(name);
  if (!parsed.success) throw new TypeError(`bad artifact name ${JSON.stringify(name)}: ${parsed.error.issues[0]?.message}`);
}

export function entryFor(name: string, key: string, sha256: string, size: number, contentType?: string): ArtifactEntry {
  return ArtifactEntry.parse({ name, key, sha256, size, contentType: contentType ?? DEFAULT_CONTENT_TYPE });
}

function describeIssues(issues: readonly { path: PropertyKey[]; message: string }[]): string[] {
  return issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
}

/** The key a (possibly invalid) manifest would be committed at, for error messages. */
function intendedManifestKey(manifest: unknown): string {
  const { runId, stage, instance } = (typeof manifest === 'object' && manifest !== null ? manifest : {}) as Record<string, unknown>;
  if (typeof runId !== 'string' || typeof stage !== 'string') return '(manifest without runId/stage)';
  return manifestKey(runId, typeof instance === 'string' ? `${stage}#${instance}` : stage);
}

/**
 * Parses a manifest about to be committed. Besides the schema, every artifact key must be a valid
 * key inside the manifest's own run: `removeRun` deletes a run's prefix, and a manifest pointing
 * into another run would silently lose its objects when that run is removed.
 */
export function parseManifestForCommit(manifest: unknown): { manifest: StageManifest; key: string } {
  const parsed = StageManifest.safeParse(manifest);
  if (!parsed.success) throw new InvalidManifestError(intendedManifestKey(manifest), describeIssues(parsed.error.issues));
  const value = parsed.data;
  const key = manifestKey(value.runId, manifestRef(value));
  const prefix = runPrefix(value.runId);
  const problems: string[] = [];
  value.artifacts.forEach((artifact, index) => {
    try {
      assertKey(artifact.key);
    } catch (error) {
      problems.push(`artifacts.${index}.key: ${(error as Error).message}`);
      return;
    }
    if (!artifact.key.startsWith(prefix)) problems.push(`artifacts.${index}.key: ${JSON.stringify(artifact.key)} is outside ${prefix}`);
  });
  if (problems.length > 0) throw new InvalidManifestError(key, problems);
  return { manifest: value, key };
}

/**
 * Confirms that every artifact of a manifest is stored with the size it claims, asking `stat`
 * about each distinct key once. Throws naming every missing or mismatched object.
 */
export async function assertArtifactsStored(
  manifest: StageManifest,
  key: string,
  stat: (key: string) => Promise<{ size: number } | null>,
): Promise<void> {
  const sizes = new Map<string, Promise<{ size: number } | null>>();
  for (const artifact of manifest.artifacts) if (!sizes.has(artifact.key)) sizes.set(artifact.key, stat(artifact.key));
  const problems: string[] = [];
  for (const [index, artifact] of manifest.artifacts.entries()) {
    const stored = await sizes.get(artifact.key);
    const label = `artifacts.${index} (${JSON.stringify(artifact.name)} at ${artifact.key})`;
    if (stored === null || stored === undefined) problems.push(`${label}: object does not exist`);
    else if (stored.size !== artifact.size) problems.push(`${label}: stored size ${stored.size} differs from ${artifact.size}`);
  }
  if (problems.length > 0) throw new InvalidManifestError(key, problems);
}

export function serializeManifest(manifest: StageManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}

/**
 * Parses a stored manifest and checks it belongs where it was found (run, stage and instance), so
 * a manifest copied to the wrong key is reported rather than trusted.
 */
export function parseStoredManifest(bytes: Buffer, runId: string, stage: string): StageManifest {
  const key = manifestKey(runId, stage);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new InvalidManifestError(key, [`not JSON: ${(error as Error).message}`]);
  }
  const parsed = StageManifest.safeParse(json);
  if (!parsed.success) throw new InvalidManifestError(key, describeIssues(parsed.error.issues));
  if (parsed.data.runId !== runId || manifestRef(parsed.data) !== stage) {
    throw new InvalidManifestError(key, [`belongs to ${manifestKey(parsed.data.runId, manifestRef(parsed.data))}`]);
  }
  return parsed.data;
}

/** Stage order, then the default instance before keyed ones, keyed ones by key. */
export function compareStage(a: StageManifest, b: StageManifest): number {
  const order = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return order(a.stage, b.stage) || order(a.instance ?? '', b.instance ?? '');
}

/**
 * `listManifests` of both stores: one instance's manifest (`stage#instance`), a stage's manifests
 * (its default instance and every keyed instance, whose folders sit inside the stage's folder), or
 * every stage's, sorted by stage and instance. Only folders named like a stage (in the run) or like
 * an instance key (in a stage) can hold one. The stores differ only in how they list a folder's
 * subfolders: `subfolders(prefix)` gets a key prefix ending in `/`.
 */
export async function listStageManifests(
  store: Pick<ArtifactStore, 'readManifest'>,
  runId: string,
  stage: string | undefined,
  subfolders: (prefix: string) => Promise<string[]>,
): Promise<StageManifest[]> {
  if (stage !== undefined && splitInstanceId(stage).instance !== undefined) {
    const manifest = await store.readManifest(runId, stage);
    return manifest === null ? [] : [manifest];
  }
  const stages = stage !== undefined ? [stage] : (await subfolders(`runs/${runId}/`)).filter((name) => StageNameFormat.safeParse(name).success);
  const refs = (
    await Promise.all(
      stages.map(async (name) => [name, ...(await subfolders(`runs/${runId}/${name}/`)).filter((key) => InstanceKey.safeParse(key).success).map((key) => `${name}#${key}`)]),
    )
  ).flat();
  const manifests = await Promise.all(refs.map((ref) => store.readManifest(runId, ref)));
  return manifests.filter((manifest): manifest is StageManifest => manifest !== null).sort(compareStage);
}
