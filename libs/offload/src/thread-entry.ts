/**
 * The worker thread's side of `runInThread`: loads the task's module, runs the task with a context
 * wired to the caller's messages (abort, drain, marker acknowledgements), and posts its progress,
 * markers, log lines, and finally its result or its error (name, message, stack).
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import type { FromThread, ThreadStart, ToThread, WireError } from './protocol';
import { HandedBackError, TaskCancelledError, type ThreadTask, type ThreadTaskContext } from './task';

function post(message: FromThread): void {
  parentPort?.postMessage(message);
}

function wireError(error: unknown): WireError {
  if (error instanceof HandedBackError) return { name: error.name, message: error.message, stack: error.stack, marker: error.marker, hasMarker: error.marker !== undefined };
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: 'Error', message: String(error) };
}

async function run(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('thread-entry: not running in a worker thread');
  const { task, input } = workerData as ThreadStart;
  const cancel = new AbortController();
  const drain = new AbortController();
  const acks = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  let nextMarker = 0;
  port.on('message', (message: ToThread) => {
    if (message.type === 'abort') cancel.abort(new TaskCancelledError(message.message));
    else if (message.type === 'drain') drain.abort();
    else if (message.type === 'marker-ack') {
      const waiting = acks.get(message.id);
      acks.delete(message.id);
      if (message.error === undefined) waiting?.resolve();
      else waiting?.reject(new Error(`the step marker was not stored: ${message.error}`));
    }
  });
  const context: ThreadTaskContext = {
    signal: cancel.signal,
    drain: drain.signal,
    progress: (progress) => post({ type: 'progress', progress }),
    marker: (marker) =>
      new Promise<void>((resolve, reject) => {
        const id = nextMarker++;
        acks.set(id, { resolve, reject });
        post({ type: 'marker', id, marker });
      }),
    log: (line) => post({ type: 'log', line }),
  };
  const load = createRequire(__filename);
  const exports = load(task.module) as Record<string, unknown>;
  const fn = exports[task.name];
  if (typeof fn !== 'function') throw new Error(`thread task ${task.name} is not a function exported by ${task.module}`);
  const value = await (fn as ThreadTask)(input, context);
  post({ type: 'result', value });
}

run()
  .catch((error: unknown) => post({ type: 'error', error: wireError(error) }))
  // Answered: the port no longer keeps the thread alive, so it ends once the task's own handles close.
  .finally(() => parentPort?.unref());
