import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Event-loop delay over a period, in milliseconds. */
export interface EventLoopDelay {
  maxMs: number;
  p99Ms: number;
  meanMs: number;
}

/**
 * Starts measuring how late the event loop runs its timers (`monitorEventLoopDelay`); `stop()` ends
 * the measurement and returns it. A worker whose loop is late by more than half its lock duration
 * misses a lock renewal.
 */
export function watchEventLoop(resolutionMs = 10): { stop(): EventLoopDelay } {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      const ms = (ns: number) => Math.round((ns / 1e6) * 10) / 10;
      return { maxMs: ms(histogram.max), p99Ms: ms(histogram.percentile(99)), meanMs: ms(histogram.mean) };
    },
  };
}
