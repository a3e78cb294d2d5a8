/**
 * A reward-model checkpoint loaded for scoring: the in-process `TextReward` that `RewardService.Score`
 * serves.
 */
import type { TextReward } from '@xyp/contracts';
import { ByteTokenizer, disposeModel, initBackend, loadModel, openCheckpoint, type BackendOptions, type CheckpointObjectStore, type Model } from '@xyp/engine';
import { textRewardScorer } from '@xyp/ufrm';

export interface ServedRewardModel {
  /** The checkpoint ID (or directory) as given. */
  id: string;
  model: Model;
  score: TextReward;
  dispose(): void;
}

export interface LoadRewardModelOptions {
  /** The store a checkpoint ID is read from (a directory checkpoint needs none). */
  store?: CheckpointObjectStore;
  backend?: BackendOptions;
  /** Sequences per forward pass (default 16). */
  batchSize?: number;
}

/** Loads a reward model (a checkpoint with a value head) and its in-process scorer. */
export async function loadRewardModel(ref: string, options: LoadRewardModelOptions = {}): Promise<ServedRewardModel> {
  await initBackend(options.backend);
  const { ref: parsed, sink } = await openCheckpoint(ref, options.store);
  const model = await loadModel(sink, false);
  if (!model.params.value_w) {
    disposeModel(model);
    throw new Error(`reward model ${parsed.id}: the checkpoint has no value head (not a reward model)`);
  }
  return {
    id: parsed.id,
    model,
    score: textRewardScorer(model, new ByteTokenizer(), { batchSize: options.batchSize }),
    dispose: () => disposeModel(model),
  };
}
