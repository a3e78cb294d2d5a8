/**
 * A `LocalEngine` job as a worker-thread task (`@xyp/offload`): the thread builds its own store and
 * engine from serialisable settings, runs the job under the thread's cancel and drain signals, and
 * reports progress and resume markers through the thread's messages. `TRAINING_JOB_TASK` names it
 * for `runInThread` / `runJobInThread`.
 */
import type { CausalLmSpecInput, EngineJob, JobKind, PpoSpecInput, RewardModelSpecInput, SftSpecInput } from '@xyp/contracts';
import type { BackendOptions } from '@xyp/engine';
import type { TaskRef, ThreadTaskContext } from '@xyp/offload';
import { createRewardClient, rewardServiceScorer } from '@xyp/reward-serving';
import { createArtifactStore, type ArtifactStoreOptions } from '@xyp/storage';
import type { JobControl, JobProgress, ResumeMarker } from './job-control';
import { LocalEngine } from './local-engine';

/** What a training thread starts from: all of it survives structured cloning. */
export interface TrainingJobInput {
  kind: JobKind;
  spec: CausalLmSpecInput | SftSpecInput | RewardModelSpecInput | PpoSpecInput;
  /** The store the thread opens for itself (the caller's store object cannot cross threads). */
  store: ArtifactStoreOptions;
  backend?: BackendOptions;
  /** The step marker of an earlier attempt. */
  resume?: ResumeMarker;
  checkpointEverySteps?: number;
  checkpointEverySeconds?: number;
  /** PPO: score rollouts through `RewardService.Score` at this address instead of in process. */
  rewardService?: { address: string; model?: string; timeoutMs?: number };
}

export async function trainingJobTask(input: TrainingJobInput, context: ThreadTaskContext<JobProgress, ResumeMarker>): Promise<EngineJob> {
  const engine = new LocalEngine({ store: () => createArtifactStore(input.store), backend: input.backend });
  const control: JobControl = {
    signal: context.signal,
    drain: context.drain,
    onProgress: (progress) => context.progress(progress),
    resume: input.resume,
    onCheckpoint: (marker) => context.marker(marker),
    checkpointEverySteps: input.checkpointEverySteps,
    checkpointEverySeconds: input.checkpointEverySeconds,
  };
  switch (input.kind) {
    case 'causal-lm':
      return engine.trainCausalLm(input.spec as CausalLmSpecInput, control);
    case 'sft':
      return engine.trainSft(input.spec as SftSpecInput, control);
    case 'reward-model':
      return engine.trainRewardModel(input.spec as RewardModelSpecInput, control);
    case 'ppo': {
      const service = input.rewardService;
      const client = service ? createRewardClient(service.address) : undefined;
      try {
        const reward = client && service ? rewardServiceScorer(client, { model: service.model, timeoutMs: service.timeoutMs }) : undefined;
        return await engine.runPpo(input.spec as PpoSpecInput, { ...control, reward });
      } finally {
        client?.close();
      }
    }
  }
}

/** `trainingJobTask`, for `runInThread` and `runJobInThread`. */
export const TRAINING_JOB_TASK: TaskRef = { module: __filename, name: 'trainingJobTask' };
