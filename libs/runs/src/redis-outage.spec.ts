import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { freePort, startPrivateRedis, type PrivateRedis } from '@xyp/testing';
import type { RunEvent } from '@xyp/contracts';
import { RedisUnreachableError, RunEvents, keepReconnecting, retryWhileRedisUnreachable } from './index';

/**
 * Run events and record lookups across Redis outages, on a private redis-server this file
 * restarts, freezes and stops (never the shared test Redis).
 */
describe('run events across Redis outages (private redis-server)', () => {
  let redis: PrivateRedis;
  let client: Redis;
  let events: RunEvents;

  beforeAll(async () => {
    redis = await startPrivateRedis(await freePort());
    // As the queue module's shared client: a command gives up after a bounded number of reconnects.
    client = new Redis(redis.url, { maxRetriesPerRequest: 3, retryStrategy: keepReconnecting });
    client.on('error', () => undefined);
    events = new RunEvents(client, 'outage');
  }, 30_000);
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });

  /** Follows a run in the background, collecting what it yields and how it ended. */
  function follow(runId: string, options: Parameters<RunEvents['follow']>[2] = {}) {
    const seen: RunEvent[] = [];
    const ended = (async () => {
      for await (const event of events.follow(runId, '0-0', { blockMs: 200, ...options })) seen.push(event);
    })().then(
      () => 'done',
      (error: unknown) => error,
    );
    return { seen, ended };
  }

  it('keeps following through a Redis restart of 1.5 s: every event once, in order', async () => {
    await events.publish({ runId: 'run-restart', type: 'run-queued', stage: 'pipeline.run' });
    await events.publish({ runId: 'run-restart', type: 'stage-started', stage: 'corpus.inspect', attempt: 1 });
    const watch = follow('run-restart');
    await expect.poll(() => watch.seen.length).toBe(2);
    // Down for longer than the shared client's three reconnects (100 + 200 + 300 ms) take.
    await redis.restart({ keepData: true, downMs: 1500 });
    await retryWhileRedisUnreachable(() => events.publish({ runId: 'run-restart', type: 'stage-completed', stage: 'corpus.inspect', attempt: 1 }), { address: redis.url });
    await events.publish({ runId: 'run-restart', type: 'run-completed', stage: 'pipeline.run' });
    expect(await watch.ended).toBe('done');
    expect(watch.seen.map((e) => e.type)).toEqual(['run-queued', 'stage-started', 'stage-completed', 'run-completed']);
    expect(new Set(watch.seen.map((e) => e.id)).size).toBe(4);
  }, 30_000);

  it('keeps following through 3 s of a frozen Redis (SIGSTOP), then gets what was written after', async () => {
    await events.publish({ runId: 'run-frozen', type: 'run-queued', stage: 'pipeline.run' });
    const watch = follow('run-frozen', { unreachableAfterMs: 10_000 });
    await expect.poll(() => watch.seen.length).toBe(1);
    await redis.freeze(3000);
    await events.publish({ runId: 'run-frozen', type: 'run-completed', stage: 'pipeline.run' });
    expect(await watch.ended).toBe('done');
    expect(watch.seen.map((e) => e.type)).toEqual(['run-queued', 'run-completed']);
  }, 30_000);

  it('ends the follow when its check throws (e.g. the run record vanished)', async () => {
    await events.publish({ runId: 'run-checked', type: 'run-queued', stage: 'pipeline.run' });
    let checks = 0;
    const lost = new Error('run run-checked: Redis holds no record of it');
    const watch = follow('run-checked', { checkEveryMs: 300, check: async () => (++checks >= 2 ? Promise.reject(lost) : undefined) });
    expect(await watch.ended).toBe(lost);
    expect(watch.seen.map((e) => e.type)).toEqual(['run-queued']);
  }, 10_000);

  it('stops at once when aborted, even while Redis does not answer', async () => {
    const abort = new AbortController();
    const watch = follow('run-aborted', { signal: abort.signal });
    await new Promise((r) => setTimeout(r, 300));
    const frozen = redis.freeze(2000);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    abort.abort();
    expect(await watch.ended).toBe('done');
    expect(Date.now() - started).toBeLessThan(500);
    await frozen;
  }, 10_000);

  it('gives up with an error naming the address once Redis stays frozen past the limit', async () => {
    const watch = follow('run-gone', { unreachableAfterMs: 1000 });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const frozen = redis.freeze(4000);
    const error = await watch.ended;
    expect(error).toBeInstanceOf(RedisUnreachableError);
    expect((error as Error).message).toMatch(new RegExp(`^Redis is unreachable at 127\\.0\\.0\\.1:${redis.port}: no answer for \\d+ s`));
    expect(Date.now() - started).toBeLessThan(3500);
    await frozen;
  }, 15_000);

  it('retries a lookup while Redis restarts, and gives up naming the address when it stays down', async () => {
    await client.set('outage:record', 'kept');
    const restarting = redis.restart({ keepData: true, downMs: 2000 });
    await new Promise((r) => setTimeout(r, 100));
    const retried: number[] = [];
    const value = await retryWhileRedisUnreachable(() => client.get('outage:record'), { address: `127.0.0.1:${redis.port}`, onRetry: (_e, attempt) => retried.push(attempt) });
    await restarting;
    expect(value).toBe('kept');
    // The plain client, three reconnects per command, failed at least once meanwhile.
    expect(retried.length).toBeGreaterThan(0);

    // Not a connection error: thrown at once, no retry.
    const wrong = await retryWhileRedisUnreachable(() => client.call('NO-SUCH-COMMAND'), { address: 'x' }).catch((e: unknown) => e);
    expect(wrong).not.toBeInstanceOf(RedisUnreachableError);

    // A port where no Redis answers: the lookup gives up after limitMs.
    const downPort = await freePort();
    const stopped = new Redis(`redis://127.0.0.1:${downPort}`, { maxRetriesPerRequest: 1, retryStrategy: keepReconnecting });
    stopped.on('error', () => undefined);
    const started = Date.now();
    const gone = await retryWhileRedisUnreachable(() => stopped.get('k'), { address: `127.0.0.1:${downPort}`, limitMs: 1500 }).catch((e: unknown) => e);
    stopped.disconnect();
    expect(gone).toBeInstanceOf(RedisUnreachableError);
    expect((gone as Error).message).toMatch(new RegExp(`^Redis is unreachable at 127\\.0\\.0\\.1:${downPort}: no answer for [12] s \\(last: `));
    expect(Date.now() - started).toBeLessThan(5000);
  }, 20_000);
});
