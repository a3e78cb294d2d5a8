/**
 * Time as the gateway sees it: `now()` for rate limits, cooldowns and latency, `sleep()` for every
 * wait (backoff, Retry-After, rate limits, cooldowns). Injected so tests can drive time: a fake
 * clock whose `sleep` advances `now` at once makes a schedule of waits checkable without waiting.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface Clock {
  /** Milliseconds; wall time (an HTTP-date `Retry-After` is compared with it). */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason as soon as it is aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  sleep: async (ms, signal) => {
    signal?.throwIfAborted();
    if (ms <= 0) return;
    try {
      await delay(ms, undefined, signal ? { signal } : undefined);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw error;
    }
  },
};
