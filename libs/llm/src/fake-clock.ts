/**
 * A clock for tests: `now()` moves only when someone sleeps, and `sleep(ms)` moves it by `ms` at
 * once (after a turn of the microtask queue), recording the wait. Backoff schedules, rate-limit
 * waits and cooldowns can then be asserted exactly, without waiting.
 */
import type { Clock } from './clock';

export interface FakeClock extends Clock {
  /** Every wait asked for, in order (0-ms waits too). */
  readonly sleeps: number[];
  /** Moves time forward without a sleep. */
  advance(ms: number): void;
}

export function fakeClock(start = Date.parse('2030-01-01T00:00:00Z')): FakeClock {
  let t = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
      await Promise.resolve();
      signal?.throwIfAborted();
      t += Math.max(0, ms);
    },
  };
}
