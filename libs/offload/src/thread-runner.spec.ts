import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { watchEventLoop } from './event-loop';
import { HandedBackError, ThreadTaskError, type TaskRef } from './task';
import type { StepMarker, StepProgress, StepsInput } from './testing/fixture-tasks';
import { runInThread } from './thread-runner';

const FIXTURES = join(__dirname, 'testing', 'fixture-tasks.ts');
const task = (name: string): TaskRef => ({ module: FIXTURES, name });

describe('runInThread', () => {
  it('runs the task in a worker thread and resolves with its result', async () => {
    const logs: string[] = [];
    const result = await runInThread<StepsInput, { steps: number; mainThread: boolean; threadId: number }>(task('countSteps'), { steps: 3, stepMs: 1 }, { onLog: (l) => logs.push(l) });
    expect(result).toMatchObject({ steps: 3, mainThread: false });
    expect(result.threadId).toBeGreaterThan(0);
    expect(logs).toEqual(['counted to 3']);
  });

  it('shares the process environment with the thread: a variable the thread sets is the process’s own', async () => {
    const name = `XYP_OFFLOAD_ENV_${process.pid}`;
    try {
      const result = await runInThread<{ name: string; value: string; holdMs: number }, { mainThread: boolean }>(task('setEnvironment'), { name, value: 'from-the-thread', holdMs: 1 });
      expect(result.mainThread).toBe(false);
      expect(process.env[name]).toBe('from-the-thread');
    } finally {
      delete process.env[name];
    }
  });

  it('keeps the caller’s event loop free while the thread computes for 1.5 s without yielding a step', async () => {
    const loop = watchEventLoop();
    let ticks = 0;
    const ticker = setInterval(() => (ticks += 1), 20);
    const progress: StepProgress[] = [];
    await runInThread<StepsInput, unknown, StepProgress>(task('countSteps'), { steps: 3, stepMs: 500 }, { onProgress: (p) => progress.push(p) });
    clearInterval(ticker);
    const delay = loop.stop();
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3]);
    // 1.5 s of 20 ms ticks: about 75 when the loop is free (none at all on a blocked loop).
    expect(ticks).toBeGreaterThan(40);
    expect(delay.maxMs).toBeLessThan(250);
  });

  it('reports a task’s failure with its message and name', async () => {
    const failed = runInThread(task('failWith'), { message: 'bad input: steps must be positive' });
    await expect(failed).rejects.toBeInstanceOf(ThreadTaskError);
    await expect(failed).rejects.toMatchObject({ message: 'bad input: steps must be positive', taskErrorName: 'RangeError' });
    await expect(runInThread(task('noSuchTask'), {})).rejects.toThrow(`thread task noSuchTask is not a function exported by ${FIXTURES}`);
    await expect(runInThread(task('exitThread'), { code: 3 })).rejects.toThrow('thread of task exitThread exited with code 3 before it finished');
  });

  it('cancel: the task stops within one step, the call rejects with the signal’s reason', async () => {
    const cancel = new AbortController();
    const seen: number[] = [];
    let atCancel = 0;
    let cancelledAt = 0;
    const run = runInThread<StepsInput, unknown, StepProgress>(
      task('countSteps'),
      { steps: 100, stepMs: 100 },
      {
        signal: cancel.signal,
        onProgress: (p) => {
          seen.push(p.done);
          if (p.done === 3) {
            atCancel = p.done;
            cancelledAt = performance.now();
            cancel.abort(new Error('cancelled by the test'));
          }
        },
      },
    );
    await expect(run).rejects.toThrow('cancelled by the test');
    const latency = performance.now() - cancelledAt;
    expect(Math.max(...seen) - atCancel).toBeLessThanOrEqual(1);
    expect(latency).toBeLessThan(1000);
    // Already aborted: no thread at all.
    await expect(runInThread(task('countSteps'), { steps: 1, stepMs: 1 }, { signal: cancel.signal })).rejects.toThrow('cancelled by the test');
  });

  it('cancel of a thread that never yields: terminated after the grace period', async () => {
    const cancel = new AbortController();
    setTimeout(() => cancel.abort(new Error('stop spinning')), 100);
    const started = performance.now();
    await expect(runInThread(task('spinForever'), {}, { signal: cancel.signal, abortGraceMs: 200 })).rejects.toThrow('stop spinning');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('drain: the task finishes its step, its marker is stored, and the call rejects with HandedBackError carrying it', async () => {
    const drain = new AbortController();
    const stored: StepMarker[] = [];
    const run = runInThread<StepsInput, unknown, StepProgress, StepMarker>(
      task('countSteps'),
      { steps: 100, stepMs: 20, markerEvery: 2 },
      {
        drain: drain.signal,
        onProgress: (p) => void (p.done === 5 && drain.abort()),
        onMarker: async (m) => {
          await new Promise((resolve) => setTimeout(resolve, 10));
          stored.push(m);
        },
      },
    );
    const error = (await run.catch((e: unknown) => e)) as HandedBackError<StepMarker>;
    expect(error).toBeInstanceOf(HandedBackError);
    expect(error.marker?.step).toBeGreaterThanOrEqual(5);
    expect(error.marker?.step).toBeLessThanOrEqual(6);
    expect(stored.at(-1)).toEqual(error.marker);
    expect(stored.slice(0, 2)).toEqual([{ step: 2 }, { step: 4 }]);
  });

  it('a marker the caller fails to store fails the task with that reason', async () => {
    const run = runInThread<StepsInput, unknown, StepProgress, StepMarker>(task('countSteps'), { steps: 5, stepMs: 1, markerEvery: 2 }, {
      onMarker: () => {
        throw new Error('Redis is down');
      },
    });
    await expect(run).rejects.toThrow('the step marker was not stored: Redis is down');
  });
});
