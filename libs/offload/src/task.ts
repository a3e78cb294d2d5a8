/**
 * What a task run in a worker thread sees, and the errors that cross the thread boundary by name.
 */

/** Names a task: the module that exports it (an absolute path, `.ts` or `.js`) and the export. */
export interface TaskRef {
  module: string;
  name: string;
}

/** The thread side of a task run by `runInThread`. */
export interface ThreadTaskContext<P = unknown, M = unknown> {
  /** Aborted when the caller cancels: stop within one step and commit nothing (reject with `signal.reason`). */
  signal: AbortSignal;
  /**
   * Aborted when the caller's worker shuts down (SIGTERM, `worker.close()`): finish the step in
   * progress, checkpoint, record a step marker, and throw `HandedBackError` — or just finish, when
   * little is left.
   */
  drain: AbortSignal;
  /** Reports progress (fire and forget; the caller throttles what it stores). */
  progress(progress: P): void;
  /**
   * Records a step marker (what a later attempt resumes from, e.g. the step and the keys of its
   * checkpoint). Resolves once the caller has stored it (`job.updateData`), so a marker the task saw
   * acknowledged survives the process.
   */
  marker(marker: M): Promise<void>;
  /** A line for the caller's log. */
  log(line: string): void;
}

/** A task: JSON-like input in (structured clone), a promise of a JSON-like output. */
export type ThreadTask<I = unknown, O = unknown, P = unknown, M = unknown> = (input: I, context: ThreadTaskContext<P, M>) => Promise<O>;

/**
 * The task stopped at a step boundary because its worker is shutting down, and left `marker` (the
 * last step marker it recorded, if any) for the next attempt to resume from.
 */
export class HandedBackError<M = unknown> extends Error {
  override readonly name = 'HandedBackError';
  constructor(
    readonly marker: M | undefined,
    message = 'handed back at a step boundary for another worker to resume',
  ) {
    super(message);
  }
}

/** The task was cancelled; thrown inside the thread when `context.signal` aborts. */
export class TaskCancelledError extends Error {
  override readonly name = 'AbortError';
  constructor(message = 'the task was cancelled') {
    super(message);
  }
}

/** A task that failed in its thread: its error's name, message and stack, as the thread reported them. */
export class ThreadTaskError extends Error {
  override readonly name = 'ThreadTaskError';
  constructor(
    message: string,
    readonly taskErrorName: string,
    readonly taskStack?: string,
  ) {
    super(message);
  }
}

/** Whether `error` is an abort (a DOM `AbortError`, `TaskCancelledError`, or the `signal`'s own reason). */
export function isAbortError(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted && error === signal.reason) return true;
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}
