/**
 * For the specs: commits a freshly initialised tiny byte-level model (1 layer, width 16, context 48)
 * as the checkpoint `<runId>/<stage>`, an LM or, with `valueHead`, a reward model; fails when the
 * store refuses the manifest.
 */
import { ArtifactStoreSink, checkpointManifest, disposeModel, initParams, saveModel } from '@xyp/engine';
import type { ArtifactStore } from '@xyp/storage';

export async function commitFreshModel(store: ArtifactStore, id: string, valueHead: boolean, seed: number): Promise<void> {
  const [runId, stage] = id.split('/');
  const model = initParams({ vocabSize: 260, contextLength: 48, layers: 1, width: 16, heads: 2, lmHead: !valueHead, valueHead }, seed);
  try {
    const sink = new ArtifactStoreSink(store, runId, stage);
    await saveModel(sink, model);
    if (!(await store.commitManifest(checkpointManifest(sink))).committed) throw new Error(`commitFreshModel: ${id} is already committed`);
  } finally {
    disposeModel(model);
  }
}
