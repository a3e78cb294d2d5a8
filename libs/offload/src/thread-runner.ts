/**
 * Runs a CPU-bound task in a `worker_threads` thread, so that the caller's event loop stays free for
 * what must not wait (a BullMQ worker's lock renewal, progress, cancel, shutdown). Messages between the
 * two: progress, step markers (acknowledged once stored), log lines, the result, errors (name and
 * message), abort and drain.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { SHARE_ENV, Worker, type ResourceLimits } from 'node:worker_threads';
import type { FromThread, ThreadStart, ToThread } from './protocol';
import { HandedBackError, ThreadTaskError, type TaskRef } from './task';

/** The workspace's TypeScript hook (SWC), which a thread needs to load `.ts` task modules. */
export const TS_REGISTER = resolve(__dirname, '..', '..', '..', 'tools', 'runtime', 'register.js');
const ENTRY = join(__dirname, 'thread-entry.ts');

let swcPinned = false;

/**
 * SWC's N-API binding (napi-rs), which the TypeScript hook loads in every thread, takes the process
 * down when the first thread that loaded it exits while it is loaded elsewhere. Loading it in the
 * calling thread first, and keeping it there, makes thread exits safe. A service started through the
 * hook has it loaded already; a test runner that transforms TypeScript itself does not.
 */
function pinSwcBinding(): void {
  if (swcPinned) return;
  createRequire(TS_REGISTER)('@swc/core');
  // The engine's native OpenBLAS addon, which training threads load, is pinned the same way when
  // it is built: a shared library that stays loaded here is never unloaded when a thread exits.
  if (existsSync(NATIVE_ADDON)) createRequire(TS_REGISTER)(NATIVE_ADDON);
  swcPinned = true;
}

/** Where `tools/native/build.sh` puts the engine's addon (see `@xyp/engine` `NATIVE_ADDON_PATH`). */
const NATIVE_ADDON = resolve(__dirname, '..', '..', '..', 'tools', 'native', 'blas', 'build', 'Release', 'xyp_blas.node');

export interface RunInThreadOptions<P = unknown, M = unknown> {
  /** Cancel: the task's `signal` aborts; the call rejects with this signal's reason once the thread ends. */
  signal?: AbortSignal;
  /** Shut down: the task's `drain` aborts (it finishes its step, checkpoints, and hands back). */
  drain?: AbortSignal;
  onProgress?: (progress: P) => void;
  /** Stores a step marker; awaited before the task is told it is stored. A rejection fails the marker. */
  onMarker?: (marker: M) => Promise<void> | void;
  onLog?: (line: string) => void;
  /** After a cancel, the thread is terminated if it has not ended within this time (default 30 s). */
  abortGraceMs?: number;
  /** A thread still alive this long after its task answered is terminated (default 10 s). */
  lingerMs?: number;
  /** Modules the thread requires before the entry (default: the TypeScript hook, when present). */
  preload?: string[];
  resourceLimits?: ResourceLimits;
}

function reasonOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(typeof reason === 'string' ? reason : 'the task was cancelled');
  error.name = 'AbortError';
  return error;
}

/**
 * Runs `task` on `input` in a new worker thread and resolves with its result. Rejects with the
 * signal's reason after a cancel, with `HandedBackError` (and the last step marker) when the task
 * handed its work back on drain, and with `ThreadTaskError` (the task's message) when it failed or
 * its thread died.
 */
export function runInThread<I, O, P = unknown, M = unknown>(task: TaskRef, input: I, options: RunInThreadOptions<P, M> = {}): Promise<O> {
  const { signal, drain } = options;
  if (signal?.aborted) return Promise.reject(reasonOf(signal));
  const preload = options.preload ?? (existsSync(TS_REGISTER) ? [TS_REGISTER] : []);
  if (preload.includes(TS_REGISTER)) pinSwcBinding();
  const start: ThreadStart = { task, input };
  const source = [...preload, ENTRY].map((path) => `require(${JSON.stringify(path)});`).join('\n');
  // The thread shares the process's environment (reads and writes): a native library loaded first in the
  // thread reads the real environment, so a setting made before it loads (the engine's
  // OPENBLAS_THREAD_TIMEOUT) must land there, not in a copy.
  const worker = new Worker(source, { eval: true, workerData: start, resourceLimits: options.resourceLimits, env: SHARE_ENV });

  return new Promise<O>((resolvePromise, rejectPromise) => {
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const send = (message: ToThread): void => {
      if (!settled) worker.postMessage(message);
    };
    let lingerMs = options.lingerMs ?? 10_000;
    const onAbort = (): void => {
      send({ type: 'abort', message: reasonOf(signal as AbortSignal).message });
      graceTimer = setTimeout(() => {
        lingerMs = 0;
        finish(() => rejectPromise(reasonOf(signal as AbortSignal)));
      }, options.abortGraceMs ?? 30_000);
    };
    const onDrain = (): void => send({ type: 'drain' });
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      if (graceTimer) clearTimeout(graceTimer);
      signal?.removeEventListener('abort', onAbort);
      drain?.removeEventListener('abort', onDrain);
      settle();
      // The thread ends by itself once its task has answered (terminating a thread that holds native
      // addons can take the process down); one that lingers, or ignored a cancel, is terminated.
      const lingering = setTimeout(() => void worker.terminate(), lingerMs);
      lingering.unref();
      worker.once('exit', () => clearTimeout(lingering));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (drain?.aborted) onDrain();
    else drain?.addEventListener('abort', onDrain, { once: true });

    /** A listener that throws must not take the process down from inside the message handler. */
    const guarded = (call: () => void, report: boolean): void => {
      try {
        call();
      } catch (error) {
        if (report) guarded(() => options.onLog?.(`listener failed: ${error instanceof Error ? error.message : String(error)}`), false);
      }
    };
    worker.on('message', (message: FromThread) => {
      switch (message.type) {
        case 'progress':
          guarded(() => options.onProgress?.(message.progress as P), true);
          return;
        case 'log':
          guarded(() => options.onLog?.(message.line), false);
          return;
        case 'marker':
          void (async () => {
            try {
              await options.onMarker?.(message.marker as M);
              send({ type: 'marker-ack', id: message.id });
            } catch (error) {
              send({ type: 'marker-ack', id: message.id, error: error instanceof Error ? error.message : String(error) });
            }
          })();
          return;
        case 'result':
          finish(() => resolvePromise(message.value as O));
          return;
        case 'error': {
          const { error } = message;
          if (signal?.aborted) return finish(() => rejectPromise(reasonOf(signal)));
          if (error.name === 'HandedBackError') return finish(() => rejectPromise(new HandedBackError(error.hasMarker ? (error.marker as M) : undefined, error.message)));
          return finish(() => rejectPromise(new ThreadTaskError(error.message, error.name, error.stack)));
        }
      }
    });
    worker.on('error', (error) => {
      finish(() => rejectPromise(signal?.aborted ? reasonOf(signal) : new ThreadTaskError(`thread of task ${task.name} failed: ${error.message}`, error.name, error.stack)));
    });
    worker.on('exit', (code) => {
      finish(() =>
        rejectPromise(signal?.aborted ? reasonOf(signal) : new ThreadTaskError(`thread of task ${task.name} exited with code ${code} before it finished`, 'ThreadExit')),
      );
    });
  });
}
