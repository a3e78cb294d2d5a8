/**
 * Per-model admission: a concurrency semaphore (FIFO) and token buckets for requests and tokens
 * per minute. The buckets reserve: a take subtracts at once, possibly going below zero, and the
 * taker waits until the refill brings the level back to zero — so waiters are served in order and
 * nobody polls. `adjust` charges the difference between the estimated and the actual tokens after
 * a call.
 */
import type { Clock } from './clock';

export class Semaphore {
  private active = 0;
  private readonly waiters: { grant: () => void }[] = [];

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.active;
  }

  /** Resolves with a release function once a slot is free; rejects with the signal's reason when aborted while queued. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.active++;
          resolve(this.releaser());
        },
      };
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.waiters.shift()?.grant();
    };
  }
}

/** `perMinute` units per minute, a burst of up to `perMinute` (a full bucket). */
export class TokenBucket {
  private level: number;
  private updatedAt: number;
  private readonly perMs: number;

  constructor(
    readonly perMinute: number,
    private readonly clock: Clock,
  ) {
    this.level = perMinute;
    this.updatedAt = clock.now();
    this.perMs = perMinute / 60_000;
  }

  private refill(): void {
    const now = this.clock.now();
    this.level = Math.min(this.perMinute, this.level + Math.max(0, now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }

  /** Milliseconds to wait for `amount` reserved now (0 when available); a take larger than the bucket counts as a full bucket. */
  reserve(amount: number): number {
    this.refill();
    this.level -= Math.min(amount, this.perMinute);
    return this.level >= 0 ? 0 : -this.level / this.perMs;
  }

  /** Charges `amount` more (negative: refunds), e.g. actual tokens less the estimate. */
  adjust(amount: number): void {
    this.refill();
    this.level = Math.min(this.perMinute, this.level - amount);
  }

  /** Reserves `amount` and waits for it; an abort refunds the reservation and rejects with the signal's reason. */
  async take(amount: number, signal?: AbortSignal): Promise<void> {
    const wait = this.reserve(amount);
    if (wait <= 0) return;
    try {
      await this.clock.sleep(wait, signal);
    } catch (error) {
      this.adjust(-Math.min(amount, this.perMinute));
      throw error;
    }
  }
}
