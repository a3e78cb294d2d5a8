/**
 * Checkpoints in the project's ArtifactStore, and the checkpoint IDs a user passes around.
 *
 * A checkpoint ID is `<runId>/<stage>` in an artifact store: the checkpoint's files are artifacts of
 * that stage, named as the engine names them (`model.safetensors`, `config.json`, ...), and the
 * stage's manifest lists them. A plain directory written by `DirectorySink` is accepted wherever an
 * ID is.
 *
 * The engine only writes objects and reads committed manifests (`CheckpointObjectStore`, a part of
 * `ArtifactStore`). It never commits a manifest: the sink returns the entries it wrote
 * (`ArtifactStoreSink.entries`, `checkpointManifest`) and whoever owns the stage — a stage worker,
 * the CLI — commits it, and only then does the checkpoint exist.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CHECKPOINT_RESULT_KIND, RunId, StageRefFormat, splitInstanceId, type ArtifactEntry, type StageManifest } from '@xyp/contracts';
import { DirectorySink, type CheckpointSink } from './checkpoint';

/**
 * What checkpoints need of the artifact store (`ArtifactStore` of `@xyp/storage` has it): write and
 * read objects, read a committed manifest. No commit.
 */
export interface CheckpointObjectStore {
  putObject(runId: string, stage: string, name: string, body: Buffer, contentType?: string): Promise<ArtifactEntry>;
  getObject(key: string): Promise<Buffer>;
  readManifest(runId: string, stage: string): Promise<StageManifest | null>;
  /** Names the store in messages, e.g. `local:/path` or `s3://bucket`. */
  describe(): string;
}

export { CHECKPOINT_RESULT_KIND } from '@xyp/contracts';

export type CheckpointRef = { kind: 'store'; runId: string; stage: string; id: string } | { kind: 'directory'; dir: string; id: string };

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Reads a checkpoint reference: an existing directory (or a path starting with `/`, `./`, `../`)
 * is a directory checkpoint; otherwise it must be `<runId>/<stage>` or `<runId>/<stage>#<instance>`
 * (a checkpoint a stage instance committed, e.g. `xy3-1/reward.train#finetune`).
 */
export function parseCheckpointRef(text: string): CheckpointRef {
  const value = text.trim();
  if (value === '') throw new Error('checkpoint: empty; give <runId>/<stage> or a directory');
  if (/^(\/|\.\.?\/)/.test(value) || isDirectory(value)) return { kind: 'directory', dir: resolve(value), id: value };
  const parts = value.split('/');
  if (parts.length !== 2) {
    throw new Error(`checkpoint "${value}": not an existing directory, and not <runId>/<stage> (e.g. lm-1a2b3c/engine.lm)`);
  }
  const [runId, stage] = parts;
  const run = RunId.safeParse(runId);
  if (!run.success) throw new Error(`checkpoint "${value}": bad run id "${runId}": ${run.error.issues[0]?.message}`);
  const stageOk = StageRefFormat.safeParse(stage);
  if (!stageOk.success) throw new Error(`checkpoint "${value}": bad stage "${stage}": ${stageOk.error.issues[0]?.message}`);
  return { kind: 'store', runId, stage, id: `${runId}/${stage}` };
}

export function formatCheckpointId(runId: string, stage: string): string {
  return parseCheckpointRef(`${runId}/${stage}`).id;
}

function contentTypeOf(name: string): string {
  return name.endsWith('.json') ? 'application/json' : 'application/octet-stream';
}

/**
 * A `CheckpointSink` over one stage of the ArtifactStore. `put` stores each file as an artifact of
 * the stage; `entries` lists what was put, for the manifest the caller commits (`checkpointManifest`).
 * `get` reads files written in this session, then those of the committed manifest.
 */
export class ArtifactStoreSink implements CheckpointSink {
  private readonly written = new Map<string, ArtifactEntry>();
  private manifest: StageManifest | null | undefined;

  constructor(
    readonly store: CheckpointObjectStore,
    readonly runId: string,
    readonly stage: string,
  ) {
    parseCheckpointRef(`${runId}/${stage}`);
  }

  get id(): string {
    return `${this.runId}/${this.stage}`;
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.written.set(name, await this.store.putObject(this.runId, this.stage, name, body, contentTypeOf(name)));
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const entry = this.written.get(name) ?? (await this.committed())?.artifacts.find((a) => a.name === name);
    if (!entry) return undefined;
    return new Uint8Array(await this.store.getObject(entry.key));
  }

  /** The objects put so far, sorted by name. */
  entries(): ArtifactEntry[] {
    return [...this.written.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The committed manifest, or null when the stage has none. */
  async committed(): Promise<StageManifest | null> {
    if (this.manifest === undefined) this.manifest = await this.store.readManifest(this.runId, this.stage);
    return this.manifest;
  }
}

/**
 * The stage manifest of a checkpoint written through `sink`, for the caller to commit: the files put
 * so far and `result` plus the checkpoint kind and file list. Fails when nothing was written.
 */
export function checkpointManifest(sink: ArtifactStoreSink, result: Record<string, unknown> = {}): StageManifest {
  const artifacts = sink.entries();
  if (artifacts.length === 0) throw new Error(`checkpoint ${sink.id}: nothing written`);
  const { stage, instance } = splitInstanceId(sink.stage);
  return {
    version: 1,
    runId: sink.runId,
    stage,
    ...(instance ? { instance } : {}),
    committedAt: new Date().toISOString(),
    artifacts,
    result: { kind: CHECKPOINT_RESULT_KIND, files: artifacts.map((a) => a.name), ...result },
  };
}

/** The error to give when a checkpoint ID is already committed by another writer. */
export function checkpointTakenError(id: string, store: CheckpointObjectStore): Error {
  return new Error(`checkpoint ${id} already exists in ${store.describe()}; choose another run id`);
}

/** A sink to write a new checkpoint; fails early when the ID is already taken. */
export async function createStoreCheckpoint(store: CheckpointObjectStore, runId: string, stage: string): Promise<ArtifactStoreSink> {
  const sink = new ArtifactStoreSink(store, runId, stage);
  if (await sink.committed()) throw checkpointTakenError(sink.id, store);
  return sink;
}

/**
 * A sink to read the checkpoint a reference names. Store checkpoints must be committed in `store`; a
 * directory must hold `config.json`.
 */
export async function openCheckpoint(ref: CheckpointRef | string, store?: CheckpointObjectStore): Promise<{ ref: CheckpointRef; sink: CheckpointSink }> {
  const parsed = typeof ref === 'string' ? parseCheckpointRef(ref) : ref;
  if (parsed.kind === 'directory') {
    const sink = new DirectorySink(parsed.dir);
    if (!(await sink.get('config.json'))) throw new Error(`checkpoint directory ${parsed.dir} has no config.json`);
    return { ref: parsed, sink };
  }
  if (!store) throw new Error(`checkpoint ${parsed.id}: a store checkpoint, but no artifact store was given to read it from`);
  const sink = new ArtifactStoreSink(store, parsed.runId, parsed.stage);
  const manifest = await sink.committed();
  if (!manifest) {
    throw new Error(`checkpoint ${parsed.id} not found in ${store.describe()} (no manifest for run ${parsed.runId}, stage ${parsed.stage})`);
  }
  if (manifest.result.kind !== CHECKPOINT_RESULT_KIND) {
    throw new Error(`${parsed.id} in ${store.describe()} is a ${String(manifest.result.kind ?? 'pipeline')} stage, not an engine checkpoint`);
  }
  return { ref: parsed, sink };
}

/** A run id for a new checkpoint: `<prefix>-<base36 time>-<random>`, valid under the contract's RunId. */
export function newRunId(prefix: string): string {
  const random = Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0');
  const id = `${prefix}-${Date.now().toString(36)}-${random}`;
  return RunId.parse(id);
}
