import { afterEach, describe, expect, it } from 'vitest';
import { EndpointError, LlmGatewayError } from '@xyp/llm';
import { OpenAiChatSource, namedSetting } from './sources';
import { chatServer, type ChatServer } from './testing/fixtures';

const servers: ChatServer[] = [];
const sources: OpenAiChatSource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A source over a one-model gateway registry (the gateway's retry loop, no other). */
function source(options: Parameters<typeof OpenAiChatSource.forEndpoint>[0]): OpenAiChatSource {
  const s = OpenAiChatSource.forEndpoint(options);
  sources.push(s);
  return s;
}

async function server(reply: Parameters<typeof chatServer>[0]): Promise<ChatServer> {
  const s = await chatServer(reply);
  servers.push(s);
  return s;
}

const setting = namedSetting({ name: 'warm', temperature: 0.8, topP: 0.9, maxTokens: 32 });

describe('OpenAI-compatible endpoint calls, through the LLM gateway', () => {
  it('sends model, messages, temperature, top_p, n, max_tokens and seed, and returns the n choices in order', async () => {
    const s = await server(() => ({ contents: ['first', 'second'] }));
    const texts = await source({ id: 'big', baseUrl: `${s.baseUrl}/`, model: 'xy-70b', backoffMs: 1 }).sample({ prompt: 'What is a bond?', setting, n: 2, seed: 42 });
    expect(texts.map((t) => t.text)).toEqual(['first', 'second']);
    expect(s.requests).toEqual([{ model: 'xy-70b', messages: [{ role: 'user', content: 'What is a bond?' }], temperature: 0.8, top_p: 0.9, n: 2, max_tokens: 32, seed: 42 }]);
  });

  it('retries a 500 and a 429 with backoff, then succeeds', async () => {
    const s = await server((_body, k) =>
      k === 0 ? { status: 500, body: { error: { message: 'overloaded' } } } : k === 1 ? { status: 429, body: {}, headers: { 'retry-after': '0' } } : { contents: ['ok'] },
    );
    const sampled = await source({ id: 'm', baseUrl: s.baseUrl, model: 'm', retries: 3, backoffMs: 5 }).sample({ prompt: 'p', setting, n: 1, seed: 1 });
    expect(sampled.map((t) => t.text)).toEqual(['ok']);
    expect(s.requests).toHaveLength(3);
  });

  it('retries a transient 500 with the gateway defaults (no retries or backoff configured)', async () => {
    const s = await server((_body, k) => (k === 0 ? { status: 500, body: { error: { message: 'overloaded' } } } : { contents: ['ok'] }));
    const sampled = await source({ id: 'm', baseUrl: s.baseUrl, model: 'm' }).sample({ prompt: 'p', setting, n: 1, seed: 1 });
    expect(sampled.map((t) => t.text)).toEqual(['ok']);
    expect(s.requests).toHaveLength(2);
  });

  it('does not retry a 400, and names the endpoint, the model and the status', async () => {
    const s = await server(() => ({ status: 400, body: { error: { message: "Invalid value for 'top_p'" } } }));
    const error = await source({ id: 'm', baseUrl: s.baseUrl, model: 'xy-70b', retries: 3, backoffMs: 1 })
      .sample({ prompt: 'p', setting, n: 1, seed: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmGatewayError);
    expect(error).toBeInstanceOf(EndpointError);
    const e = error as LlmGatewayError;
    expect([e.status, e.attempts, e.permanent, e.endpoint]).toEqual([400, 1, true, `${s.baseUrl}/v1`]);
    expect(e.message).toContain(`${s.baseUrl}/v1 (model id xy-70b)`);
    expect(e.message).toContain('status 400');
    expect(e.message).toContain("Invalid value for 'top_p'");
    expect(s.requests).toHaveLength(1);
  });

  it('gives up after the retries on a 5xx, with the last status', async () => {
    const s = await server(() => ({ status: 503, body: 'busy' }));
    const error = (await source({ id: 'm', baseUrl: s.baseUrl, model: 'm', retries: 2, backoffMs: 1 }).sample({ prompt: 'p', setting, n: 1, seed: 1 }).catch((e: unknown) => e)) as EndpointError;
    expect(error.message).toMatch(/failed after 3 attempt\(s\); last: status 503/);
    expect([error.status, error.attempts]).toEqual([503, 3]);
    expect(s.requests).toHaveLength(3);
  });

  it('times out an attempt that gets no answer, and retries it', async () => {
    let calls = 0;
    const { createServer } = await import('node:http');
    const hanging = createServer(() => {
      calls += 1;
    });
    await new Promise<void>((done) => hanging.listen(0, '127.0.0.1', done));
    const port = (hanging.address() as { port: number }).port;
    try {
      const error = (await source({ id: 'm', baseUrl: `http://127.0.0.1:${port}`, model: 'm', retries: 1, backoffMs: 1, timeoutMs: 150 }).sample({ prompt: 'p', setting, n: 1, seed: 1 }).catch((e: unknown) => e)) as EndpointError;
      expect(error).toBeInstanceOf(EndpointError);
      expect(error.message).toContain('no answer within 150 ms');
      expect(error.status).toBeUndefined();
      expect(calls).toBe(2);
    } finally {
      hanging.closeAllConnections();
      await new Promise<void>((done) => hanging.close(() => done()));
    }
  });
});
