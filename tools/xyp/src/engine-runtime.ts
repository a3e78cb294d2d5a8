/**
 * What the engine commands read from the environment, once, at the command's start: the artifact
 * store (`XYP_STORE`, `XYP_STORE_DIR`, `XYP_S3_*`) and the engine backend (`XYP_ENGINE_*`). The
 * libraries read no environment; they get these as explicit options.
 */
import { EngineEnv, PlatformEnv, engineBackendOptions, loadConfig, storeSettings } from '@xyp/config';
import type { EngineJob } from '@xyp/contracts';
import { checkpointTakenError, type BackendOptions } from '@xyp/engine';
import { createArtifactStore, type ArtifactStore } from '@xyp/storage';

/** The store the platform's environment configures. */
export function configuredStore(env: Record<string, string | undefined> = process.env): ArtifactStore {
  return createArtifactStore(storeSettings(loadConfig(PlatformEnv, env)));
}

/** The engine backend settings the environment gives (`XYP_ENGINE_BACKEND`, `_THREADS`, `_NATIVE`, `_NATIVE_PATH`). */
export function configuredBackend(env: Record<string, string | undefined> = process.env): BackendOptions {
  return engineBackendOptions(loadConfig(EngineEnv, env));
}

/**
 * Commits the checkpoint a local job wrote: its stage manifest, which the engine returns without
 * committing. Fails, naming the ID, when another writer committed that stage first.
 */
export async function commitCheckpoint(store: ArtifactStore, job: Extract<EngineJob, { engine: 'local' }>): Promise<void> {
  const outcome = await store.commitManifest(job.manifest);
  if (!outcome.committed) throw checkpointTakenError(job.checkpoint, store);
}
