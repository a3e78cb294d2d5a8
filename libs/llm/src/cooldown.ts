/**
 * The circuit breaker of one endpoint: it opens when the endpoint failed more than half of its calls
 * in the rolling window (and had at least `minCalls` there), and stays open for `cooldownMs`. Calls
 * are counted in 60 buckets of windowMs/60, so the window rolls in steps of a sixtieth. Opening
 * empties the window: once the cooldown is over the endpoint starts afresh ("half-open" without a
 * probe). A failure here is a transient one (one the gateway retries); an endpoint answering 400 is up.
 */
import type { Clock } from './clock';

export interface CooldownPolicy {
  minCalls: number;
  windowMs: number;
  cooldownMs: number;
}

const BUCKETS = 60;

export class Cooldown {
  private readonly buckets: { slot: number; calls: number; failures: number }[] = [];
  private readonly bucketMs: number;
  private until = -Infinity;
  /** How many times it opened. */
  opened = 0;

  constructor(
    private readonly policy: CooldownPolicy,
    private readonly clock: Clock,
  ) {
    this.bucketMs = policy.windowMs / BUCKETS;
  }

  /** The time the pause ends, or undefined when the endpoint takes calls now. */
  pausedUntil(now = this.clock.now()): number | undefined {
    return now < this.until ? this.until : undefined;
  }

  /** Counts one call; true when this call opened the breaker. */
  record(failed: boolean): boolean {
    const now = this.clock.now();
    const slot = Math.floor(now / this.bucketMs);
    const oldest = slot - BUCKETS + 1;
    while (this.buckets.length && this.buckets[0].slot < oldest) this.buckets.shift();
    let last = this.buckets[this.buckets.length - 1];
    if (!last || last.slot !== slot) {
      last = { slot, calls: 0, failures: 0 };
      this.buckets.push(last);
    }
    last.calls++;
    if (failed) last.failures++;
    if (!failed || this.pausedUntil(now) !== undefined) return false;
    let calls = 0;
    let failures = 0;
    for (const b of this.buckets) {
      calls += b.calls;
      failures += b.failures;
    }
    if (calls < this.policy.minCalls || failures * 2 <= calls) return false;
    this.until = now + this.policy.cooldownMs;
    this.buckets.length = 0;
    this.opened++;
    return true;
  }
}
