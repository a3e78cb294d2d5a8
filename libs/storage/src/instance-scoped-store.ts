import type { Readable } from 'node:stream';
import { instanceId, type ArtifactEntry, type StageManifest } from '@xyp/contracts';
import type { ArtifactBody, ArtifactStore, ByteRange, CommitResult } from './artifact-store';

/**
 * The store as one stage instance sees it: writing objects, reading or committing the manifest of
 * its own run and stage lands in the instance's folder (`runs/<runId>/<stage>/<instance>/`).
 * Stage code written for one instance per run (`putObject(runId, 'corpus.bucket', name, body)`)
 * thus keeps working, unchanged, for every instance of its stage. Everything else — other stages,
 * other runs, a ref that already names an instance, reads by key — passes through untouched.
 * For the default instance (no key) it is the store itself.
 */
export function scopeStoreToInstance(store: ArtifactStore, scope: { runId: string; stage: string; instance?: string }): ArtifactStore {
  if (!scope.instance) return store;
  return new InstanceScopedStore(store, scope.runId, scope.stage, scope.instance);
}

class InstanceScopedStore implements ArtifactStore {
  private readonly ref: string;

  constructor(
    private readonly store: ArtifactStore,
    private readonly runId: string,
    private readonly stage: string,
    private readonly instance: string,
  ) {
    this.ref = instanceId(stage, instance);
  }

  /** The instance's ref for its own run and stage; anything else as given. */
  private scoped(runId: string, stage: string): string {
    return runId === this.runId && stage === this.stage ? this.ref : stage;
  }

  putObject(runId: string, stage: string, name: string, body: ArtifactBody, contentType?: string): Promise<ArtifactEntry> {
    return this.store.putObject(runId, this.scoped(runId, stage), name, body, contentType);
  }

  getObjectStream(key: string, range?: ByteRange): Promise<Readable> {
    return this.store.getObjectStream(key, range);
  }

  getObject(key: string): Promise<Buffer> {
    return this.store.getObject(key);
  }

  statObject(key: string): Promise<{ size: number } | null> {
    return this.store.statObject(key);
  }

  commitManifest(manifest: StageManifest): Promise<CommitResult> {
    const own = manifest.runId === this.runId && manifest.stage === this.stage && manifest.instance === undefined;
    return this.store.commitManifest(own ? { ...manifest, instance: this.instance } : manifest);
  }

  readManifest(runId: string, stage: string): Promise<StageManifest | null> {
    return this.store.readManifest(runId, this.scoped(runId, stage));
  }

  listManifests(runId: string, stage?: string): Promise<StageManifest[]> {
    return this.store.listManifests(runId, stage);
  }

  removeRun(runId: string): Promise<void> {
    return this.store.removeRun(runId);
  }

  describe(): string {
    return `${this.store.describe()} (as ${this.ref})`;
  }
}
