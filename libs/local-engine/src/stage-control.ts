/**
 * A training stage's `JobControl` from its stage context (the shape of `StageContext` of
 * `@xyp/queue`, declared here so the engine does not import the queue): cancel and progress
 * through the context, a resume checkpoint every `everySeconds` kept on the BullMQ job, and — on a
 * retry after a crash, or a stalled job taken over — the last one to go on from.
 */
import type { JobControl, ResumeMarker } from './job-control';

export interface StageControlContext {
  signal: AbortSignal;
  /** `figures`: the step's loss and, for RL steps, mean reward (the worker's `xyp_training_loss`, `xyp_reward_mean` gauges). */
  progress(done: number, total: number, unit: string, message?: string, figures?: { loss?: number; meanReward?: number }): Promise<void>;
  resumeCheckpoint: unknown;
  keepCheckpoint(checkpoint: unknown): Promise<void>;
  log(message: string): void;
}

export function stageJobControl(context: StageControlContext, everySeconds = 30): JobControl {
  return {
    signal: context.signal,
    onProgress: (p) => context.progress(p.done, p.total, 'steps', p.message, { loss: p.loss, ...(p.meanReward !== undefined ? { meanReward: p.meanReward } : {}) }),
    resume: context.resumeCheckpoint as ResumeMarker | undefined,
    checkpointEverySeconds: everySeconds,
    onCheckpoint: async (marker) => {
      await context.keepCheckpoint(marker);
      context.log(`resume checkpoint at step ${marker.step}/${marker.totalSteps}`);
    },
  };
}
