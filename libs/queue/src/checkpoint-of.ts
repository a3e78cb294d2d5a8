import { UnrecoverableError } from 'bullmq';
import { CHECKPOINT_RESULT_KIND, StageManifest, instanceId } from '@xyp/contracts';
import type { ArtifactStore } from '@xyp/storage';

/**
 * The checkpoint ID (`<runId>/<stage>#<instance>`) a committed manifest holds, and the manifest;
 * a manifest that is not an engine checkpoint fails the stage for good, naming `slot`.
 */
export async function checkpointOf(store: ArtifactStore, manifestKey: string, slot: string): Promise<{ checkpoint: string; manifest: StageManifest }> {
  const manifest = StageManifest.parse(JSON.parse((await store.getObject(manifestKey)).toString('utf8')));
  const id = instanceId(manifest.stage, manifest.instance);
  if (manifest.result.kind !== CHECKPOINT_RESULT_KIND) throw new UnrecoverableError(`${slot}: ${id} is not a checkpoint (its manifest result is ${String(manifest.result.kind)})`);
  return { checkpoint: `${manifest.runId}/${id}`, manifest };
}
