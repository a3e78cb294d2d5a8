/**
 * A BullMQ job whose work runs in a worker thread (`runInThread`), the worker's own event loop left
 * free: BullMQ renews the job's lock on its timers while the thread computes, so a stage that runs for
 * hours keeps its lock (the default 30 s lock is renewed every 15 s) and never runs twice.
 *
 * - progress: the thread's reports are stored with `job.updateProgress`, at most every
 *   `progressIntervalMs` and always the last one;
 * - step markers: each marker the thread records is stored on the job (`job.updateData`, under
 *   `markerKey`) before the thread goes on; the next attempt reads it back and resumes from it;
 * - cancel: BullMQ's processor signal (`worker.cancelJob(id)`) or `isCancelled` (polled) aborts the
 *   thread, which stops within one step; the job fails with `JobCancelledError` (unrecoverable: no
 *   retry), and nothing is committed, since committing is the caller's, after a result;
 * - shutdown: when the worker starts closing (SIGTERM, `worker.close()`), the thread drains: it
 *   finishes its step, checkpoints, records a marker and hands the job back; the job is moved back to
 *   wait (no attempt spent) for another worker to resume from that marker.
 */
import { UnrecoverableError, WaitingError } from 'bullmq';
import { HandedBackError, type TaskRef } from './task';
import { runInThread, type RunInThreadOptions } from './thread-runner';

/** The job data key of the step marker (kept beside the payload). */
export const STEP_MARKER_KEY = 'xypStepMarker';

/** What the glue needs of a BullMQ `Job`. */
export interface OffloadedJob {
  id?: string;
  data: unknown;
  updateData(data: never): Promise<unknown>;
  updateProgress(progress: never): Promise<unknown>;
  moveToWait?(token?: string): Promise<unknown>;
}

/** What the glue needs of a BullMQ `Worker`: its `closing` event. */
export interface ClosingWorker {
  on(event: 'closing', listener: (message: string) => void): unknown;
  off(event: 'closing', listener: (message: string) => void): unknown;
  /** Set once `close()` was called. */
  closing?: Promise<void> | null;
}

export interface ThreadJobOptions<I, P, M> {
  task: TaskRef;
  /** The thread's input, given the step marker an earlier attempt stored on the job (undefined at first). */
  input: (resume: M | undefined) => I;
  /** BullMQ's processor signal (the processor's third argument): aborted by `worker.cancelJob(id)`. */
  signal?: AbortSignal;
  /** The worker the job runs on: its closing drains the thread and hands the job back. */
  worker?: ClosingWorker;
  /** Polled every `cancelPollMs` (default 1000); a truthy answer (a string is the reason) cancels. */
  isCancelled?: () => Promise<boolean | string> | boolean | string;
  cancelPollMs?: number;
  /** What `job.updateProgress` stores for a report (default: the report itself). */
  progressValue?: (progress: P) => number | object;
  progressIntervalMs?: number;
  onProgress?: (progress: P) => void;
  onLog?: (line: string) => void;
  markerKey?: string;
  /** Passed to `runInThread`. */
  thread?: Pick<RunInThreadOptions, 'abortGraceMs' | 'preload' | 'resourceLimits'>;
}

/** The job was cancelled while its thread ran; unrecoverable, so BullMQ does not retry it. */
export class JobCancelledError extends UnrecoverableError {
  constructor(jobId: string | undefined, reason: string) {
    super(`job ${jobId ?? '?'} cancelled: ${reason}`);
    this.name = 'JobCancelledError';
  }
}

/** The step marker an earlier attempt stored on the job's data, if any. */
export function storedStepMarker<M>(data: unknown, key = STEP_MARKER_KEY): M | undefined {
  if (typeof data !== 'object' || data === null || !(key in data)) return undefined;
  const value = (data as Record<string, unknown>)[key];
  return value === null ? undefined : (value as M);
}

/** The job's data without its step marker (the payload as the producer sent it). */
export function withoutStepMarker(data: unknown, key = STEP_MARKER_KEY): unknown {
  if (typeof data !== 'object' || data === null || !(key in data)) return data;
  const { [key]: _marker, ...payload } = data as Record<string, unknown>;
  return payload;
}

function messageOf(reason: unknown): string {
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'cancelled';
}

/**
 * Runs the job's work in a worker thread under the rules in the file comment and returns the task's
 * output. `token` is the processor's second argument (needed to move a handed-back job to wait).
 */
export async function runJobInThread<I, O, P = unknown, M = unknown>(job: OffloadedJob, token: string | undefined, options: ThreadJobOptions<I, P, M>): Promise<O> {
  const key = options.markerKey ?? STEP_MARKER_KEY;
  const cancel = new AbortController();
  const drain = new AbortController();
  const onCancel = (): void => void (cancel.signal.aborted || cancel.abort(options.signal?.reason ?? new Error('cancelled')));
  options.signal?.addEventListener('abort', onCancel, { once: true });
  if (options.signal?.aborted) onCancel();
  const onClosing = (): void => drain.abort();
  options.worker?.on('closing', onClosing);
  if (options.worker?.closing) drain.abort();

  let poll: NodeJS.Timeout | undefined;
  if (options.isCancelled) {
    const check = options.isCancelled;
    poll = setInterval(() => {
      void (async () => {
        try {
          const answer = await check();
          if (answer && !cancel.signal.aborted) cancel.abort(new Error(typeof answer === 'string' ? answer : 'cancelled'));
        } catch (error) {
          options.onLog?.(`cancel check failed: ${messageOf(error)}`);
        }
      })();
    }, options.cancelPollMs ?? 1000);
    poll.unref();
  }

  // Progress: at most one job.updateProgress per interval, the last report always stored.
  const interval = options.progressIntervalMs ?? 1000;
  let pending: P | undefined;
  let lastSent = 0;
  let timer: NodeJS.Timeout | undefined;
  let writes: Promise<unknown> = Promise.resolve();
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending === undefined) return;
    const report = pending;
    pending = undefined;
    lastSent = Date.now();
    const value = options.progressValue ? options.progressValue(report) : (report as number | object);
    writes = writes.then(() => job.updateProgress(value as never)).catch((error: unknown) => options.onLog?.(`progress not stored: ${messageOf(error)}`));
  };
  const onProgress = (report: P): void => {
    options.onProgress?.(report);
    pending = report;
    const wait = interval - (Date.now() - lastSent);
    if (wait <= 0) flush();
    else timer ??= setTimeout(flush, wait);
  };

  const onMarker = async (marker: M): Promise<void> => {
    await job.updateData({ ...(job.data as Record<string, unknown>), [key]: marker } as never);
  };

  try {
    return await runInThread<I, O, P, M>(options.task, options.input(storedStepMarker<M>(job.data, key)), {
      ...options.thread,
      signal: cancel.signal,
      drain: drain.signal,
      onProgress,
      onMarker,
      onLog: options.onLog,
    });
  } catch (error) {
    if (cancel.signal.aborted) throw new JobCancelledError(job.id, messageOf(cancel.signal.reason));
    if (error instanceof HandedBackError && token && job.moveToWait) {
      options.onLog?.(`job ${job.id ?? '?'} handed back at a step boundary; moved back to wait`);
      flush();
      await writes;
      await job.moveToWait(token);
      throw new WaitingError();
    }
    throw error;
  } finally {
    flush();
    await writes;
    if (poll) clearInterval(poll);
    options.signal?.removeEventListener('abort', onCancel);
    options.worker?.off('closing', onClosing);
  }
}
