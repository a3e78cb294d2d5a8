import { describe, expect, it } from 'vitest';
import { QueueFullError, SerialQueue } from './serial-queue';

describe('serial queue', () => {
  it('runs jobs one at a time, in arrival order, even when a job is asynchronous or fails', async () => {
    const queue = new SerialQueue();
    const events: string[] = [];
    let running = 0;
    const job = (name: string, ms: number, fail = false) => async () => {
      running += 1;
      expect(running).toBe(1);
      events.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`end ${name}`);
      running -= 1;
      if (fail) throw new Error(`${name} failed`);
      return name;
    };
    const results = await Promise.allSettled([queue.run(job('a', 20)), queue.run(job('b', 1, true)), queue.run(job('c', 5))]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['a', 'b failed', 'c']);
    expect(events).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(queue.pending).toBe(0);
  });

  it('refuses a job beyond maxPending', async () => {
    const queue = new SerialQueue(2);
    const first = queue.run(() => new Promise((r) => setTimeout(r, 10)));
    const second = queue.run(() => 2);
    await expect(queue.run(() => 3)).rejects.toBeInstanceOf(QueueFullError);
    await Promise.all([first, second]);
    await expect(queue.run(() => 4)).resolves.toBe(4);
  });
});
