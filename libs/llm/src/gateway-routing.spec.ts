import { afterEach, describe, expect, it } from 'vitest';
import { fakeClock } from './fake-clock';
import { fakeReply, startFakeOpenAi, type FakeOpenAi } from './fault-server';
import { LlmGateway, type LlmGatewayOptions } from './gateway';
import type { ModelConfigInput } from './model-registry';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function server(options: Parameters<typeof startFakeOpenAi>[0] = {}): Promise<FakeOpenAi> {
  const s = await startFakeOpenAi(options);
  open.push(s);
  return s;
}

function gateway(models: ModelConfigInput[], options: Partial<LlmGatewayOptions> = {}): LlmGateway {
  const g = new LlmGateway({ models, backoffScale: 0.01, ...options });
  open.push(g);
  return g;
}

const ask = (content: string, extra: object = {}) => ({ messages: [{ role: 'user' as const, content }], ...extra });

describe('LlmGateway cooldown', () => {
  it('pauses an endpoint failing more than half its calls, sends its traffic to the fallback, and resumes after the cooldown', async () => {
    const clock = fakeClock();
    const primary = await server({ faults: () => ({ kind: 'status', status: 500 }) });
    const backup = await server();
    const g = gateway(
      [
        { name: 'primary', baseUrl: primary.baseUrl, model: 'big', fallback: 'backup', cooldown: { minCalls: 4, cooldownMs: 30_000 } },
        { name: 'backup', baseUrl: backup.baseUrl, model: 'small' },
      ],
      { clock, backoffScale: 1, random: () => 0 },
    );

    // Four failures (4 of 4 > half, minCalls 4) pause the primary; the fifth attempt goes to the backup at once.
    const first = await g.chat('primary', ask('one'));
    expect(first).toMatchObject({ model: 'backup', attempts: 5, content: fakeReply('one') });
    expect(primary.requests).toBe(4);
    expect(backup.requests).toBe(1);
    expect(clock.sleeps).toEqual([500, 1000, 2000]);

    // While paused, calls go straight to the backup.
    primary.setFaults(undefined);
    const second = await g.chat('primary', ask('two'));
    expect(second).toMatchObject({ model: 'backup', attempts: 1 });
    expect(primary.requests).toBe(4);
    clock.advance(25_000);
    expect((await g.chat('primary', ask('three'))).model).toBe('backup');

    // After the cooldown the primary takes its calls again.
    clock.advance(5_000);
    const after = await g.chat('primary', ask('four'));
    expect(after).toMatchObject({ model: 'primary', attempts: 1, content: fakeReply('four') });
    expect(primary.requests).toBe(5);
    expect(g.stats().primary).toMatchObject({ cooldowns: 1, httpRequests: 5, retries: 4, answered: 1 });
    expect(g.stats().backup).toMatchObject({ answered: 3, httpRequests: 3 });
  });

  it('does not pause an endpoint failing half its calls or fewer', async () => {
    const clock = fakeClock();
    // Every second request fails: 0 of 1, 1 of 2, 1 of 3, 2 of 4, … at most half.
    const primary = await server({ faults: (i) => (i % 2 === 1 ? { kind: 'status', status: 503 } : undefined) });
    const backup = await server();
    const g = gateway(
      [
        { name: 'primary', baseUrl: primary.baseUrl, model: 'big', fallback: 'backup', cooldown: { minCalls: 2 } },
        { name: 'backup', baseUrl: backup.baseUrl, model: 'small' },
      ],
      { clock },
    );
    for (let i = 0; i < 4; i++) expect((await g.chat('primary', ask(`q${i}`))).model).toBe('primary');
    expect(backup.requests).toBe(0);
    expect(g.stats().primary.cooldowns).toBe(0);
  });

  it('without a fallback, makes calls wait for the cooldown to end', async () => {
    const clock = fakeClock();
    const s = await server({ faults: (i) => (i < 2 ? { kind: 'status', status: 502 } : undefined) });
    const g = gateway([{ name: 'solo', baseUrl: s.baseUrl, model: 'm', cooldown: { minCalls: 2, cooldownMs: 20_000 } }], { clock, backoffScale: 1, random: () => 0 });
    const result = await g.chat('solo', ask('hi'));
    // Failure 1: backoff 500 ms. Failure 2 opens the breaker: backoff 1,000 ms, then the rest of the 20 s pause.
    expect(clock.sleeps).toEqual([500, 1000, 19_000]);
    expect(result).toMatchObject({ model: 'solo', attempts: 3 });
    expect(s.requests).toBe(3);
  });

  it('forgets failures older than the window', async () => {
    const clock = fakeClock();
    const s = await server({ faults: (i) => (i < 2 ? { kind: 'status', status: 500 } : undefined) });
    const g = gateway([{ name: 'solo', baseUrl: s.baseUrl, model: 'm', cooldown: { minCalls: 3, windowMs: 60_000 } }], { clock, maxAttempts: 2 });
    await expect(g.chat('solo', ask('a'))).rejects.toThrow('failed after 2 attempt(s)');
    clock.advance(61_000);
    // Two old failures dropped out: one new success and one failure do not reach minCalls 3 with > half failing.
    s.setFaults((i) => (i === 3 ? { kind: 'status', status: 500 } : undefined));
    await g.chat('solo', ask('b'));
    await g.chat('solo', ask('c'));
    expect(g.stats().solo.cooldowns).toBe(0);
  });
});

describe('LlmGateway limits', () => {
  it('holds at most maxConcurrency requests in flight per model', async () => {
    const s = await server({ latencyMs: 40 });
    const g = gateway([{ name: 'm', baseUrl: s.baseUrl, model: 'x', maxConcurrency: 3 }]);
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => g.chat('m', ask(`q${i}`))));
    expect(results.map((r) => r.content)).toEqual(Array.from({ length: 12 }, (_, i) => fakeReply(`q${i}`)));
    expect(s.maxInFlight).toBe(3);
    expect(performance.now() - started).toBeGreaterThanOrEqual(4 * 40 - 5);
  });

  it('delays requests beyond requestsPerMinute', async () => {
    const clock = fakeClock();
    const s = await server();
    const g = gateway([{ name: 'm', baseUrl: s.baseUrl, model: 'x', requestsPerMinute: 2 }], { clock });
    await g.chat('m', ask('a'));
    await g.chat('m', ask('b'));
    expect(clock.sleeps).toEqual([]);
    // The bucket (2, refilled at one per 30 s) is empty: the third waits 30 s, the fourth 30 s more.
    await g.chat('m', ask('c'));
    await g.chat('m', ask('d'));
    expect(clock.sleeps).toEqual([30_000, 30_000]);
    expect(s.requests).toBe(4);
  });

  it('delays requests beyond tokensPerMinute, charging the actual usage after each call', async () => {
    const clock = fakeClock();
    const s = await server();
    const g = gateway([{ name: 'm', baseUrl: s.baseUrl, model: 'x', tokensPerMinute: 100 }], { clock });
    // Estimated 40/4 + 40 = 50 tokens each; the server bills 10 prompt + 6 completion ("reply " + 16 hex = 22 chars).
    const request = (i: number) => ask(`${'x'.repeat(39)}${i}`, { max_tokens: 40 });
    const first = await g.chat('m', request(0));
    expect(first.usage).toEqual({ promptTokens: 10, completionTokens: 6 });
    // Level 100 → 50, +34 back → 84 → 34, +34 → 68 → 18, +34 → 52 → 2, +34 → 36: four calls with no wait.
    for (let i = 1; i < 4; i++) await g.chat('m', request(i));
    expect(clock.sleeps).toEqual([]);
    // The fifth takes 50 of 36: it waits for 14 tokens at 100/min = 8.4 s.
    await g.chat('m', request(4));
    expect(clock.sleeps).toHaveLength(1);
    expect(clock.sleeps[0]).toBeCloseTo(8400, 6);
  });
});
