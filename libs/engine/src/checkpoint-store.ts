/**
 * Checkpoints in the project's ArtifactStore, and the checkpoint IDs a user passes around.
 *
 * A checkpoint ID is `<runId>/<stage>` in the configured store (`XYP_STORE`, `XYP_STORE_DIR`,
 * default `.xyp/store`): the checkpoint's files are artifacts of that stage, named as the engine
 * names them (`model.safetensors`, `config.json`, ...), and the stage's manifest lists them. A plain
 * directory written by `DirectorySink` is accepted wherever an ID is.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig, PlatformEnv, storeSettings } from '@xyp/config';
import { RunId, StageNameFormat, type ArtifactEntry, type StageManifest } from '@xyp/contracts';
import { createArtifactStore, type ArtifactStore } from '@xyp/storage';
import { DirectorySink, type CheckpointSink } from './checkpoint';

/** The manifest `result.kind` of a stage that holds an engine checkpoint. */
export const CHECKPOINT_RESULT_KIND = 'xyp-engine-checkpoint';

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
 * is a directory checkpoint; otherwise it must be `<runId>/<stage>`.
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
  const stageOk = StageNameFormat.safeParse(stage);
  if (!stageOk.success) throw new Error(`checkpoint "${value}": bad stage "${stage}": ${stageOk.error.issues[0]?.message}`);
  return { kind: 'store', runId, stage, id: `${runId}/${stage}` };
}

export function formatCheckpointId(runId: string, stage: string): string {
  return parseCheckpointRef(`${runId}/${stage}`).id;
}

/** The store the platform's environment configures (`XYP_STORE`, `XYP_STORE_DIR`, `XYP_S3_*`). */
export function storeFromEnv(env: Record<string, string | undefined> = process.env): ArtifactStore {
  return createArtifactStore(storeSettings(loadConfig(PlatformEnv, env)));
}

function contentTypeOf(name: string): string {
  return name.endsWith('.json') ? 'application/json' : 'application/octet-stream';
}

/**
 * A `CheckpointSink` over one stage of the ArtifactStore. `put` stores each file as an artifact of
 * the stage; `commit` writes the manifest that lists them, which is what makes the checkpoint
 * exist (the store's first commit of a stage wins). `get` reads files written in this session, then
 * those of the committed manifest.
 */
export class ArtifactStoreSink implements CheckpointSink {
  private readonly written = new Map<string, ArtifactEntry>();
  private manifest: StageManifest | null | undefined;

  constructor(
    readonly store: ArtifactStore,
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

  /** The committed manifest, or null when the stage has none. */
  async committed(): Promise<StageManifest | null> {
    if (this.manifest === undefined) this.manifest = await this.store.readManifest(this.runId, this.stage);
    return this.manifest;
  }

  /**
   * Commits the files put so far with `result` (plus the checkpoint kind and file list). Fails when
   * another writer committed this stage first, since the ID would then name that writer's files.
   */
  async commit(result: Record<string, unknown> = {}): Promise<StageManifest> {
    if (this.written.size === 0) throw new Error(`checkpoint ${this.id}: nothing to commit`);
    const artifacts = [...this.written.values()].sort((a, b) => a.name.localeCompare(b.name));
    const outcome = await this.store.commitManifest({
      version: 1,
      runId: this.runId,
      stage: this.stage,
      committedAt: new Date().toISOString(),
      artifacts,
      result: { kind: CHECKPOINT_RESULT_KIND, files: artifacts.map((a) => a.name), ...result },
    });
    if (!outcome.committed) throw new Error(`checkpoint ${this.id} already exists in ${this.store.describe()}; choose another run id`);
    this.manifest = outcome.manifest;
    return outcome.manifest;
  }
}

/** A sink to write a new checkpoint; fails early when the ID is already taken. */
export async function createStoreCheckpoint(store: ArtifactStore, runId: string, stage: string): Promise<ArtifactStoreSink> {
  const sink = new ArtifactStoreSink(store, runId, stage);
  if (await sink.committed()) throw new Error(`checkpoint ${sink.id} already exists in ${store.describe()}; choose another run id`);
  return sink;
}

/**
 * A sink to read the checkpoint a reference names. Store checkpoints must be committed; a directory
 * must hold `config.json`.
 */
export async function openCheckpoint(ref: CheckpointRef | string, store?: ArtifactStore): Promise<{ ref: CheckpointRef; sink: CheckpointSink }> {
  const parsed = typeof ref === 'string' ? parseCheckpointRef(ref) : ref;
  if (parsed.kind === 'directory') {
    const sink = new DirectorySink(parsed.dir);
    if (!(await sink.get('config.json'))) throw new Error(`checkpoint directory ${parsed.dir} has no config.json`);
    return { ref: parsed, sink };
  }
  const target = store ?? storeFromEnv();
  const sink = new ArtifactStoreSink(target, parsed.runId, parsed.stage);
  const manifest = await sink.committed();
  if (!manifest) {
    throw new Error(`checkpoint ${parsed.id} not found in ${target.describe()} (no manifest for run ${parsed.runId}, stage ${parsed.stage})`);
  }
  if (manifest.result.kind !== CHECKPOINT_RESULT_KIND) {
    throw new Error(`${parsed.id} in ${target.describe()} is a ${String(manifest.result.kind ?? 'pipeline')} stage, not an engine checkpoint`);
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
