import { freePort } from '@xyp/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { EndpointError } from './errors';
import { fakeClock } from './fake-clock';
import { fakeReply, startFakeOpenAi, type FakeOpenAi, type Fault } from './fault-server';
import { LlmGateway, LlmGatewayError, type LlmGatewayOptions } from './gateway';
import type { ModelConfigInput } from './model-registry';

const API_KEY = 'sk-test-4f9a1c2e7b';
const open: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function server(options: Parameters<typeof startFakeOpenAi>[0] = {}): Promise<FakeOpenAi> {
  const s = await startFakeOpenAi(options);
  open.push(s);
  return s;
}

/** One model, `judge`, at `baseUrl`, its key in JUDGE_KEY; backoff at 1 % unless told. */
function gateway(baseUrl: string, model: Partial<ModelConfigInput> = {}, options: Partial<LlmGatewayOptions> = {}): LlmGateway {
  const g = new LlmGateway({
    models: [{ name: 'judge', baseUrl, model: 'tiny-judge', apiKeyEnv: 'JUDGE_KEY', cooldown: { minCalls: 1000 }, ...model }],
    env: { JUDGE_KEY: API_KEY },
    backoffScale: 0.01,
    ...options,
  });
  open.push(g);
  return g;
}

const ask = (content: string) => ({ messages: [{ role: 'user' as const, content }] });

async function failure(promise: Promise<unknown>): Promise<LlmGatewayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof LlmGatewayError)) throw new Error(`expected an LlmGatewayError, got ${String(error)}`);
  return error;
}

describe('LlmGateway retries', () => {
  const transient: [string, Fault][] = [
    ['429 with retry-after-ms', { kind: 'status', status: 429, retryAfterMs: 20 }],
    ['429 with retry-after', { kind: 'status', status: 429, retryAfter: 0 }],
    ['500', { kind: 'status', status: 500 }],
    ['503', { kind: 'status', status: 503 }],
    ['408', { kind: 'status', status: 408 }],
    ['409', { kind: 'status', status: 409 }],
    ['a timeout', { kind: 'timeout' }],
    ['a connection reset', { kind: 'reset' }],
    ['a malformed body', { kind: 'malformed-body' }],
  ];

  it.each(transient)('retries %s twice and then succeeds, in exactly three requests', async (_name, fault) => {
    const s = await server({ faults: (i) => (i < 2 ? fault : undefined) });
    const result = await gateway(s.baseUrl, { timeoutMs: 150 }).chat('judge', ask('hello'));
    expect(result.content).toBe(fakeReply('hello'));
    expect(result).toMatchObject({ model: 'judge', attempts: 3, cached: false });
    expect(s.requests).toBe(3);
    expect(s.log.map((r) => r.fault)).toEqual([fault.kind, fault.kind, undefined]);
  });

  it('waits the retry-after-ms a server asks for instead of its backoff', async () => {
    const s = await server({ faults: (i) => (i === 0 ? { kind: 'status', status: 429, retryAfterMs: 250 } : undefined) });
    const g = gateway(s.baseUrl, {}, { backoffScale: 1, random: () => 0 });
    const started = performance.now();
    await g.chat('judge', ask('hi'));
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(500); // the backoff would have been 500 ms
    expect(s.requests).toBe(2);
  });

  it('waits the retry-after seconds a server asks for', async () => {
    const s = await server({ faults: (i) => (i === 0 ? { kind: 'status', status: 503, retryAfter: '1' } : undefined) });
    const started = performance.now();
    await gateway(s.baseUrl).chat('judge', ask('hi'));
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
    expect(s.requests).toBe(2);
  });

  it('waits until a retry-after HTTP date, and backs off when a retry-after is over 60 s', async () => {
    const clock = fakeClock(Date.parse('2030-01-01T00:00:00Z'));
    const at = new Date(clock.now() + 3000).toUTCString();
    const s = await server({
      faults: (i) => (i === 0 ? { kind: 'status', status: 429, retryAfter: at } : i === 1 ? { kind: 'status', status: 429, retryAfter: 120 } : undefined),
    });
    await gateway(s.baseUrl, {}, { clock, backoffScale: 1, random: () => 0 }).chat('judge', ask('hi'));
    expect(clock.sleeps).toEqual([3000, 1000]);
    expect(s.requests).toBe(3);
  });

  it('backs off min(0.5·2^n, 8) s less the pinned jitter between attempts (hand-computed)', async () => {
    const clock = fakeClock();
    const s = await server({ faults: () => ({ kind: 'status', status: 500 }) });
    const error = await failure(gateway(s.baseUrl, {}, { clock, backoffScale: 1, random: () => 0.5, maxAttempts: 7 }).chat('judge', ask('hi')));
    // 0.5, 1, 2, 4, 8, 8 (capped) seconds, each less 12.5 % (u = 0.5 of the 25 % jitter).
    expect(clock.sleeps).toEqual([437.5, 875, 1750, 3500, 7000, 7000]);
    expect(error.attempts).toBe(7);
    expect(s.requests).toBe(7);
  });
});

describe('LlmGateway permanent failures', () => {
  it.each([400, 401])('fails at once on %i, naming the endpoint and never the API key', async (status) => {
    // A careless server that echoes the key back in its error body.
    const s = await server({ faults: () => ({ kind: 'status', status, body: { error: { message: `refused key ${API_KEY}`, type: 'invalid_request_error' } } }) });
    const error = await failure(gateway(s.baseUrl).chat('judge', ask('hi')));
    expect(s.requests).toBe(1);
    expect(s.log[0].authorization).toBe(`Bearer ${API_KEY}`);
    expect(error).toBeInstanceOf(EndpointError);
    expect(error).toMatchObject({ status, attempts: 1, permanent: true, model: 'judge', requestedModel: 'judge', endpoint: s.baseUrl });
    expect(error.message).toContain(`model judge at ${s.baseUrl} (model id tiny-judge)`);
    expect(error.message).toContain(`status ${status}`);
    expect(error.message).toContain('not retried');
    expect(error.message).toContain('refused key [redacted]');
    for (const text of [error.message, String(error.stack), JSON.stringify(error)]) expect(text).not.toContain(API_KEY);
  });

  it('fails at once on other 4xx (404, 422)', async () => {
    for (const status of [404, 422]) {
      const s = await server({ faults: () => ({ kind: 'status', status }) });
      expect(await failure(gateway(s.baseUrl).chat('judge', ask('hi')))).toMatchObject({ status, attempts: 1 });
      expect(s.requests).toBe(1);
    }
  });

  it('refuses an unknown model naming the known ones', async () => {
    const s = await server();
    await expect(gateway(s.baseUrl).chat('jduge', ask('hi'))).rejects.toThrow('LlmGateway: no model named jduge (models: judge)');
    expect(s.requests).toBe(0);
  });
});

describe('LlmGateway against an endpoint that is down', () => {
  it('gives up on a refused connection after the backoff, naming the endpoint and the attempts', async () => {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}/v1`;
    const started = performance.now();
    const error = await failure(gateway(baseUrl, {}, { maxAttempts: 4, random: () => 0 }).chat('judge', ask('hi')));
    // 1 % of 0.5 + 1 + 2 s between the four attempts.
    expect(performance.now() - started).toBeGreaterThanOrEqual(35);
    expect(error).toMatchObject({ attempts: 4, status: undefined, permanent: false, endpoint: baseUrl });
    expect(error.message).toContain(`LLM model judge at ${baseUrl} (model id tiny-judge) failed after 4 attempt(s); last: connection failed`);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('gives up on an endpoint that always answers 500 after maxAttempts requests', async () => {
    const s = await server({ faults: () => ({ kind: 'status', status: 500 }) });
    const error = await failure(gateway(s.baseUrl, {}, { maxAttempts: 4 }).chat('judge', ask('hi')));
    expect(s.requests).toBe(4);
    expect(error).toMatchObject({ attempts: 4, status: 500 });
    expect(error.message).toContain('failed after 4 attempt(s); last: status 500');
  });

  it('names the timeout of an endpoint that never answers', async () => {
    const s = await server({ faults: () => ({ kind: 'timeout' }) });
    const error = await failure(gateway(s.baseUrl, { timeoutMs: 50 }, { maxAttempts: 2 }).chat('judge', ask('hi')));
    expect(s.requests).toBe(2);
    expect(error.message).toContain('last: no answer within 50 ms');
  });
});

describe('LlmGateway abort', () => {
  it('stops waiting for an answer at once', async () => {
    const s = await server({ faults: () => ({ kind: 'timeout' }) });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('caller gave up')), 50);
    const started = performance.now();
    await expect(gateway(s.baseUrl).chat('judge', ask('hi'), { signal: controller.signal })).rejects.toThrow('caller gave up');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(s.requests).toBe(1);
  });

  it('stops a backoff at once and makes no further request', async () => {
    const s = await server({ faults: () => ({ kind: 'status', status: 500 }) });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('caller gave up')), 100);
    const started = performance.now();
    await expect(gateway(s.baseUrl, {}, { backoffScale: 10 }).chat('judge', ask('hi'), { signal: controller.signal })).rejects.toThrow('caller gave up');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(s.requests).toBe(1);
  });

  it('makes no request for an already aborted signal', async () => {
    const s = await server();
    await expect(gateway(s.baseUrl).chat('judge', ask('hi'), { signal: AbortSignal.abort(new Error('too late')) })).rejects.toThrow('too late');
    expect(s.requests).toBe(0);
  });
});
