/**
 * Tasks for the offload tests, run in worker threads: CPU-bound steps (a busy loop per step) with
 * progress, markers, cancel and drain, and tasks that fail or kill their thread.
 */
import { isMainThread, threadId } from 'node:worker_threads';
import { HandedBackError, type ThreadTaskContext } from '../task';

export interface StepsInput {
  steps: number;
  stepMs: number;
  /** Record a marker every this many steps (0: only on drain). */
  markerEvery?: number;
  /** Resume after this step. */
  from?: number;
}

export interface StepProgress {
  done: number;
  total: number;
  unit: 'steps';
}

export interface StepMarker {
  step: number;
}

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy: a CPU-bound step that never yields
  }
}

export async function countSteps(input: StepsInput, context: ThreadTaskContext<StepProgress, StepMarker>): Promise<{ steps: number; from: number; threadId: number; mainThread: boolean }> {
  const from = input.from ?? 0;
  for (let step = from + 1; step <= input.steps; step++) {
    context.signal.throwIfAborted();
    if (context.drain.aborted) {
      await context.marker({ step: step - 1 });
      throw new HandedBackError<StepMarker>({ step: step - 1 });
    }
    spin(input.stepMs);
    context.progress({ done: step, total: input.steps, unit: 'steps' });
    if (input.markerEvery && step % input.markerEvery === 0) await context.marker({ step });
    await new Promise((resolve) => setImmediate(resolve));
  }
  context.log(`counted to ${input.steps}`);
  return { steps: input.steps, from, threadId, mainThread: isMainThread };
}

export async function failWith(input: { message: string }): Promise<never> {
  throw new RangeError(input.message);
}

export async function exitThread(input: { code: number }): Promise<never> {
  process.exit(input.code);
}

/** Never yields: ignores the abort message until its thread is terminated. */
export async function spinForever(): Promise<never> {
  for (;;) spin(1000);
}

/** Sets an environment variable in the thread (as the engine sets OPENBLAS_THREAD_TIMEOUT before loading its addon) and holds the thread a moment. */
export async function setEnvironment(input: { name: string; value: string; holdMs: number }): Promise<{ mainThread: boolean }> {
  process.env[input.name] = input.value;
  spin(input.holdMs);
  await new Promise((resolve) => setTimeout(resolve, input.holdMs));
  return { mainThread: isMainThread };
}
