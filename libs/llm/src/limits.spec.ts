import { describe, expect, it } from 'vitest';
import { Cooldown } from './cooldown';
import { fakeClock } from './fake-clock';
import { Semaphore, TokenBucket } from './limits';

describe('Semaphore', () => {
  it('grants slots in order and drops a waiter whose signal aborts', async () => {
    const semaphore = new Semaphore(1);
    const first = await semaphore.acquire();
    const controller = new AbortController();
    const order: string[] = [];
    const aborted = semaphore.acquire(controller.signal).then(
      () => order.push('aborted one granted'),
      (e: Error) => order.push(e.message),
    );
    const second = semaphore.acquire().then((release) => {
      order.push('second');
      return release;
    });
    controller.abort(new Error('gone'));
    await aborted;
    first();
    (await second)();
    expect(order).toEqual(['gone', 'second']);
    expect(semaphore.inFlight).toBe(0);
  });
});

describe('TokenBucket', () => {
  it('refills at perMinute/60 s and refunds a reservation whose wait is aborted', async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(60, clock);
    expect(bucket.reserve(60)).toBe(0);
    expect(bucket.reserve(1)).toBeCloseTo(1000, 9);
    clock.advance(1000);
    expect(bucket.reserve(0)).toBe(0);
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(bucket.take(30, controller.signal)).rejects.toThrow('stop');
    // The aborted 30 were refunded: one more token is a second away, not 31.
    expect(bucket.reserve(1)).toBeCloseTo(1000, 9);
  });
});

describe('Cooldown', () => {
  it('opens when more than half of at least minCalls calls failed, and only then', () => {
    const clock = fakeClock();
    const cooldown = new Cooldown({ minCalls: 4, windowMs: 60_000, cooldownMs: 10_000 }, clock);
    // 1 of 1, 1 of 2, 1 of 3: under minCalls or not more than half.
    expect([cooldown.record(true), cooldown.record(false), cooldown.record(false)]).toEqual([false, false, false]);
    // 2 of 4 is half: not more.
    expect(cooldown.record(true)).toBe(false);
    // 3 of 5.
    expect(cooldown.record(true)).toBe(true);
    expect(cooldown.pausedUntil()).toBe(clock.now() + 10_000);
    clock.advance(10_000);
    expect(cooldown.pausedUntil()).toBeUndefined();
    // The window was emptied: one failure alone does not reopen it.
    expect(cooldown.record(true)).toBe(false);
    expect(cooldown.opened).toBe(1);
  });
});
