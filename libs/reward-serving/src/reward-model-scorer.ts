/**
 * A reward-model checkpoint loaded for scoring: the in-process `TextReward` that `RewardService`
 * serves.
 */
import { status } from '@grpc/grpc-js';
import { ArtifactStoreSink, ByteTokenizer, countParams, disposeModel, initBackend, loadModel, openCheckpoint, parseCheckpointRef, type BackendOptions, type CheckpointObjectStore, type Model } from '@xyp/engine';
import { textRewardScorer } from '@xyp/ufrm';
import type { ScoringModel } from './reward-models';
import { RewardServiceError } from './reward-service-error';

export interface ServedRewardModel extends ScoringModel {
  model: Model;
  dispose(): void;
}

export interface LoadRewardModelOptions {
  /** The store a checkpoint ID is read from (a directory checkpoint needs none). */
  store?: CheckpointObjectStore;
  backend?: BackendOptions;
  /** Sequences per forward pass (default 16). */
  batchSize?: number;
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Loads a reward model (a checkpoint with a value head) and its in-process scorer. Failures are
 * `RewardServiceError`s: a malformed ID is `INVALID_ARGUMENT`, a checkpoint that is not there (or is
 * not an engine checkpoint) `NOT_FOUND`, one without a value head `FAILED_PRECONDITION`, unreadable
 * weights `INTERNAL`.
 */
export async function loadRewardModel(ref: string, options: LoadRewardModelOptions = {}): Promise<ServedRewardModel> {
  await initBackend(options.backend);
  let parsed;
  try {
    parsed = parseCheckpointRef(ref);
  } catch (error) {
    throw new RewardServiceError(status.INVALID_ARGUMENT, messageOf(error));
  }
  let sink;
  try {
    ({ sink } = await openCheckpoint(parsed, options.store));
  } catch (error) {
    throw new RewardServiceError(status.NOT_FOUND, messageOf(error));
  }
  let model: Model;
  try {
    model = await loadModel(sink, false);
  } catch (error) {
    throw new RewardServiceError(status.INTERNAL, `reward model ${parsed.id}: cannot load its weights: ${messageOf(error)}`);
  }
  if (!model.params.value_w) {
    disposeModel(model);
    throw new RewardServiceError(status.FAILED_PRECONDITION, `reward model ${parsed.id}: the checkpoint has no value head (not a reward model)`);
  }
  const weights = sink instanceof ArtifactStoreSink ? (await sink.committed())?.artifacts.find((a) => a.name === 'model.safetensors')?.sha256 : undefined;
  return {
    id: parsed.id,
    model,
    score: textRewardScorer(model, new ByteTokenizer(), { batchSize: options.batchSize }),
    contextLength: model.config.contextLength,
    parameters: countParams(model.config).total,
    weightsSha256: weights,
    dispose: () => disposeModel(model),
  };
}
