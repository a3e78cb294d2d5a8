import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropPrefix, TEST_REDIS_URL, testPrefix } from '@xyp/testing';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fakeReply, startFakeOpenAi, type FakeOpenAi } from './fault-server';
import { LlmGateway } from './gateway';
import { canonicalJson, DirectoryResponseCache, RedisResponseCache, responseCacheKey, type ResponseCache } from './response-cache';

const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
const prefix = testPrefix('llm-cache');
const dir = mkdtempSync(join(tmpdir(), 'xyp-llm-cache-'));
afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

const open: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function server(options: Parameters<typeof startFakeOpenAi>[0] = {}): Promise<FakeOpenAi> {
  const s = await startFakeOpenAi(options);
  open.push(s);
  return s;
}

function gateway(baseUrl: string, cache: ResponseCache, fallbackUrl?: string): LlmGateway {
  const g = new LlmGateway({
    models: [
      { name: 'judge', baseUrl, model: 'tiny-judge', ...(fallbackUrl ? { fallback: 'backup', cooldown: { minCalls: 1 } } : {}) },
      { name: 'backup', baseUrl: fallbackUrl ?? baseUrl, model: 'tiny-backup' },
    ],
    cache,
    backoffScale: 0.01,
  });
  open.push(g);
  return g;
}

const ask = (content: string, extra: object = {}) => ({ messages: [{ role: 'user' as const, content }], ...extra });

describe('response cache keys', () => {
  const model = { name: 'judge', model: 'tiny-judge' };
  const base = { messages: [{ role: 'user' as const, content: 'hi' }], temperature: 0.7, max_tokens: 64 };

  it('do not depend on the order of keys or on undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
    expect(responseCacheKey(model, { max_tokens: 64, temperature: 0.7, messages: base.messages, seed: undefined })).toBe(responseCacheKey(model, base));
    expect(responseCacheKey(model, base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('change with the model name, the model id, the messages and every sampling parameter', () => {
    const key = responseCacheKey(model, base);
    const variants = [
      responseCacheKey({ ...model, name: 'judge2' }, base),
      responseCacheKey({ ...model, model: 'other-id' }, base),
      responseCacheKey(model, { ...base, messages: [{ role: 'user', content: 'hi!' }] }),
      responseCacheKey(model, { ...base, messages: [{ role: 'system', content: 'hi' }] }),
      ...[{ temperature: 0.8 }, { top_p: 0.9 }, { max_tokens: 65 }, { n: 2 }, { seed: 1 }, { stop: ['\n'] }, { response_format: { type: 'json_object' } }, { presence_penalty: 0.1 }].map((change) => responseCacheKey(model, { ...base, ...change })),
    ];
    expect(new Set([key, ...variants]).size).toBe(variants.length + 1);
  });
});

const caches: [string, () => ResponseCache][] = [
  ['RedisResponseCache', () => new RedisResponseCache(redis, { prefix, ttlSeconds: 600 })],
  ['DirectoryResponseCache', () => new DirectoryResponseCache(dir)],
];

describe.each(caches)('LlmGateway with %s', (_name, makeCache) => {
  it('answers a rerun of the same requests from the cache with zero HTTP requests', async () => {
    const s = await server();
    const prompts = ['alpha', 'beta', 'gamma', 'delta'].map((p) => `${p} ${Math.random()}`);
    const first = await Promise.all(prompts.map((p) => gateway(s.baseUrl, makeCache()).chat('judge', ask(p, { temperature: 0.7, n: 2 }))));
    expect(s.requests).toBe(4);
    expect(first.every((r) => !r.cached && r.attempts === 1)).toBe(true);

    const rerun = gateway(s.baseUrl, makeCache());
    const second = await Promise.all(prompts.map((p) => rerun.chat('judge', ask(p, { temperature: 0.7, n: 2 }))));
    expect(s.requests).toBe(4);
    expect(second.map((r) => r.contents)).toEqual(prompts.map((p) => [fakeReply(p), fakeReply(p, 1)]));
    expect(second.every((r) => r.cached && r.attempts === 0 && r.model === 'judge')).toBe(true);
    expect(second.map((r) => r.usage)).toEqual(first.map((r) => r.usage));
    expect(rerun.stats().judge).toMatchObject({ cacheHits: 4, answered: 0, httpRequests: 0 });

    // Another sampling parameter is another request.
    await rerun.chat('judge', ask(prompts[0], { temperature: 0.8, n: 2 }));
    expect(s.requests).toBe(5);
    // cache: false neither reads nor writes.
    await rerun.chat('judge', ask(prompts[1], { temperature: 0.7, n: 2 }), { cache: false });
    expect(s.requests).toBe(6);
  });

  it('caches only successful answers', async () => {
    const prompt = `refused ${Math.random()}`;
    const s = await server({ faults: (i) => (i < 2 ? { kind: 'status', status: 400 } : undefined) });
    const g = gateway(s.baseUrl, makeCache());
    await expect(g.chat('judge', ask(prompt))).rejects.toThrow('status 400');
    await expect(g.chat('judge', ask(prompt))).rejects.toThrow('status 400');
    expect(s.requests).toBe(2);
    expect((await g.chat('judge', ask(prompt))).cached).toBe(false);
    expect((await g.chat('judge', ask(prompt))).cached).toBe(true);
    expect(s.requests).toBe(3);
  });

  it('keeps the answer of a fallback under the requested model, saying which model answered', async () => {
    const prompt = `fallback ${Math.random()}`;
    const primary = await server({ faults: () => ({ kind: 'status', status: 500 }) });
    const backup = await server();
    const first = await gateway(primary.baseUrl, makeCache(), backup.baseUrl).chat('judge', ask(prompt));
    expect(first.model).toBe('backup');
    const again = await gateway(primary.baseUrl, makeCache(), backup.baseUrl).chat('judge', ask(prompt));
    expect(again).toMatchObject({ cached: true, model: 'backup', content: fakeReply(prompt) });
    expect(primary.requests + backup.requests).toBe(2);
  });
});

describe('cache stores', () => {
  it('RedisResponseCache writes under its prefix with the TTL', async () => {
    const cache = new RedisResponseCache(redis, { prefix, ttlSeconds: 600 });
    await cache.set('k1', 'v1');
    expect(await redis.get(`${prefix}:k1`)).toBe('v1');
    expect(await redis.ttl(`${prefix}:k1`)).toBeGreaterThan(590);
    expect(await cache.get('k1')).toBe('v1');
    expect(await cache.get('absent')).toBeUndefined();
    await new RedisResponseCache(redis, { prefix }).set('k2', 'v2');
    expect(await redis.ttl(`${prefix}:k2`)).toBe(-1);
  });

  it('DirectoryResponseCache renames whole files into place and leaves no temporary file', async () => {
    const own = mkdtempSync(join(tmpdir(), 'xyp-llm-dircache-'));
    const cache = new DirectoryResponseCache(own);
    const key = 'ab'.repeat(32);
    await Promise.all(Array.from({ length: 20 }, (_, i) => cache.set(key, `value ${i} ${'x'.repeat(10_000)}`)));
    expect(await cache.get(key)).toMatch(/^value \d+ x{10000}$/);
    expect(readdirSync(join(own, 'ab'))).toEqual([`${key}.json`]);
    expect(await cache.get('cd'.repeat(32))).toBeUndefined();
    await expect(cache.get('../escape')).rejects.toThrow('not a file-safe name');
    rmSync(own, { recursive: true, force: true });
  });
});
