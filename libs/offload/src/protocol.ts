/** Messages between `runInThread` (the caller) and `thread-entry.ts` (the worker thread). */
import type { TaskRef } from './task';

/** What the thread starts with (`workerData`). */
export interface ThreadStart {
  task: TaskRef;
  input: unknown;
}

/** Caller → thread. */
export type ToThread =
  /** Cancel: the task's `signal` aborts with this message. */
  | { type: 'abort'; message: string }
  /** Shut down: the task's `drain` aborts. */
  | { type: 'drain' }
  /** The caller stored marker `id` (or failed to, with `error`). */
  | { type: 'marker-ack'; id: number; error?: string };

/** An error as it crosses the thread boundary. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** For `HandedBackError`: the marker to resume from. */
  marker?: unknown;
  hasMarker?: boolean;
}

/** Thread → caller. */
export type FromThread =
  | { type: 'progress'; progress: unknown }
  | { type: 'marker'; id: number; marker: unknown }
  | { type: 'log'; line: string }
  | { type: 'result'; value: unknown }
  | { type: 'error'; error: WireError };
