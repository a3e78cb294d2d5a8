import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeReply, startFakeOpenAi, type FakeOpenAi } from './fault-server';

const open: FakeOpenAi[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function server(options: Parameters<typeof startFakeOpenAi>[0] = {}): Promise<FakeOpenAi> {
  const s = await startFakeOpenAi(options);
  open.push(s);
  return s;
}

const post = (s: FakeOpenAi, body: object, init: RequestInit = {}) =>
  fetch(`${s.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });

describe('fake OpenAI server', () => {
  it('speaks the chat completions and models protocol to the official client', async () => {
    const s = await server({ models: ['m1', 'm2'] });
    const client = new OpenAI({ baseURL: s.baseUrl, apiKey: 'sk-x', maxRetries: 0 });
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(['m1', 'm2']);
    const completion = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }], n: 2 });
    expect(completion.choices.map((c) => c.message.content)).toEqual([fakeReply('hello'), fakeReply('hello', 1)]);
    expect(completion.model).toBe('m1');
    expect(completion.usage).toEqual({ prompt_tokens: Math.ceil(13 / 4), completion_tokens: 6 + 6, total_tokens: 4 + 12 });
    expect(s.requests).toBe(1);
    expect(s.log[0]).toMatchObject({ index: 0, authorization: 'Bearer sk-x' });
  });

  it('sustains 256 requests in flight at 200 ms latency', async () => {
    const s = await server({ latencyMs: 200, log: false });
    const started = performance.now();
    const bodies = await Promise.all(Array.from({ length: 256 }, (_, i) => post(s, { messages: [{ role: 'user', content: `q${i}` }] }).then((r) => r.json() as Promise<{ choices: { message: { content: string } }[] }>)));
    const elapsed = performance.now() - started;
    expect(bodies.map((b) => b.choices[0].message.content)).toEqual(Array.from({ length: 256 }, (_, i) => fakeReply(`q${i}`)));
    expect(s.maxInFlight).toBe(256);
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(2000);
  });

  it('serves each fault of the plan', async () => {
    const s = await server({
      faults: (i) =>
        [
          { kind: 'status' as const, status: 429, retryAfter: 2, retryAfterMs: 1500 },
          { kind: 'malformed-body' as const },
          { kind: 'content' as const, content: 'not { json' },
          { kind: 'reset' as const },
          { kind: 'timeout' as const },
        ][i],
    });
    const limited = await post(s, { messages: [{ role: 'user', content: 'a' }] });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(limited.headers.get('retry-after-ms')).toBe('1500');
    expect(((await limited.json()) as { error: { message: string } }).error.message).toBe('injected status 429');
    const malformed = await post(s, { messages: [{ role: 'user', content: 'b' }] });
    expect(malformed.status).toBe(200);
    expect(malformed.headers.get('content-type')).toBe('application/json');
    const text = await malformed.text();
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
    const content = (await (await post(s, { messages: [{ role: 'user', content: 'c' }] })).json()) as { choices: { message: { content: string } }[] };
    expect(content.choices[0].message.content).toBe('not { json');
    await expect(post(s, { messages: [{ role: 'user', content: 'd' }] })).rejects.toThrow('fetch failed');
    await expect(post(s, { messages: [{ role: 'user', content: 'e' }] }, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect(s.log.map((r) => r.fault)).toEqual(['status', 'malformed-body', 'content', 'reset', 'timeout']);
    expect(s.requests).toBe(5);
    s.reset();
    expect(s.requests).toBe(0);
  });

  it('refuses a body that is not a chat request with 400', async () => {
    const s = await server();
    const response = await post(s, { prompt: 'x' });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('messages must be an array');
  });
});
