/**
 * A reward-model checkpoint as a `TextReward` in process (`textRewardScorer` of `@xyp/ufrm`): what
 * PPO scores rollouts with, for the stages that score texts outside a PPO round (the RLHF prompt
 * filter and evaluation).
 */
import type { TextReward } from '@xyp/contracts';
import { ByteTokenizer, disposeModel, initBackend, loadModel, openCheckpoint, parseCheckpointRef, type BackendOptions, type CheckpointObjectStore } from '@xyp/engine';
import { textRewardScorer } from '@xyp/ufrm';

export async function openTextReward(ref: string, store?: CheckpointObjectStore, backend?: BackendOptions): Promise<{ reward: TextReward; dispose: () => void }> {
  await initBackend(backend);
  const { ref: parsed, sink } = await openCheckpoint(ref, parseCheckpointRef(ref).kind === 'store' ? store : undefined);
  const model = await loadModel(sink, false);
  if (!model.params.value_w) {
    disposeModel(model);
    throw new Error(`reward model ${parsed.id}: the checkpoint has no value head (not a reward model)`);
  }
  return { reward: textRewardScorer(model, new ByteTokenizer()), dispose: () => disposeModel(model) };
}
