/**
 * The step-wise training loop every engine loop runs on (`trainCpt`, `trainSft`, `@xyp/ufrm`'s
 * `trainRewardModel`, `@xyp/ppo`'s `ppoRound`): one optimiser step at a time, and between two steps
 *
 *  - the cancel signal is checked: an aborted `signal` stops the loop before the next step and rejects
 *    with the signal's reason, so a cancel takes effect within the step in progress;
 *  - the `stop` signal is checked: once aborted the loop returns what it did after the step in
 *    progress (a worker shutting down: the caller checkpoints and hands the job back);
 *  - `onStep` and `onProgress` run and are awaited (a BullMQ `job.updateProgress`, a thread message);
 *  - the event loop gets a turn (`setImmediate`), so timers (lock renewal), sockets and messages (an
 *    abort arriving in a worker thread) are served even when the whole loop runs on one thread.
 */
import type { StepResult } from './train';

/** What a training loop reports after each step, in units a person reads. */
export interface TrainProgress {
  unit: 'steps';
  /** Optimiser steps done in the whole job (the trainer's step count, resumed steps included). */
  done: number;
  /** Optimiser steps of the whole job. */
  total: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Tokens (positions B·T) trained per second over this session's steps. */
  tokensPerSecond: number;
  /** Seconds since this session's first step. */
  elapsedSeconds: number;
  /** Seconds left at this session's mean step time. */
  etaSeconds: number;
  /** An RL step's rollout batch: its mean reward (PPO's updates report it; supervised steps leave it out). */
  meanReward?: number;
  /** One line, e.g. `lm step 120/400, loss 2.3141, lr 3.00e-4, 5,210 tok/s, ETA 54s`. */
  message: string;
}

/** Cancel, stop, and reporting of a training loop. Every field is optional. */
export interface LoopControl {
  /** Cancel: the loop rejects with the signal's reason before its next step. */
  signal?: AbortSignal;
  /** Stop early: the loop returns after the step in progress, with the steps it did. */
  stop?: AbortSignal;
  /** After every step, awaited before the next one. */
  onStep?: (result: StepResult) => void | Promise<void>;
  /** After every step, awaited before the next one. */
  onProgress?: (progress: TrainProgress) => void | Promise<void>;
  /** Steps of the whole job, for progress (default: the steps done before this loop plus its own). */
  totalSteps?: number;
  /** Prefix of the progress message, e.g. `lm`. */
  label?: string;
}

/** Gives the event loop a turn: timers, I/O and messages queued meanwhile run before this resolves. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `54s`, `4m05s`, `2h03m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The one-line message of a progress report. */
export function formatProgress(p: Omit<TrainProgress, 'message'>, label?: string): string {
  const head = `${label ? `${label} ` : ''}step ${p.done}/${p.total}`;
  const rate = `${Math.round(p.tokensPerSecond).toLocaleString('en-US')} tok/s`;
  return `${head}, loss ${p.loss.toFixed(4)}, lr ${p.lr.toExponential(2)}, ${rate}, ETA ${formatDuration(p.etaSeconds)}`;
}

/**
 * Runs up to `steps` steps of `runStep` under `control` (see the file comment). `doneBefore` is the
 * job's step count when the loop starts (a resumed trainer's step). `runStep(i)` does the i-th step of
 * this loop and returns its result and the number of tokens it trained.
 */
export async function runStepLoop(
  steps: number,
  control: LoopControl,
  doneBefore: number,
  runStep: (index: number) => { result: StepResult; tokens: number },
): Promise<StepResult[]> {
  const results: StepResult[] = [];
  const total = control.totalSteps ?? doneBefore + steps;
  let tokens = 0;
  let started = 0;
  for (let i = 0; i < steps; i++) {
    control.signal?.throwIfAborted();
    if (control.stop?.aborted) break;
    if (i === 0) started = performance.now();
    const step = runStep(i);
    results.push(step.result);
    tokens += step.tokens;
    await control.onStep?.(step.result);
    if (control.onProgress) {
      const elapsedSeconds = (performance.now() - started) / 1000;
      const done = step.result.step;
      const progress = {
        unit: 'steps' as const,
        done,
        total,
        loss: step.result.loss,
        lr: step.result.lr,
        gradNorm: step.result.gradNorm,
        tokensPerSecond: elapsedSeconds > 0 ? tokens / elapsedSeconds : 0,
        elapsedSeconds,
        etaSeconds: (elapsedSeconds / (i + 1)) * Math.max(0, total - done),
      };
      await control.onProgress({ ...progress, message: formatProgress(progress, control.label) });
    }
    await yieldToEventLoop();
  }
  return results;
}
