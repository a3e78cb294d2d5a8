import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { fakeReply, startFakeOpenAi } from './fault-server';
import { LlmGateway } from './gateway';
import { DirectoryResponseCache } from './response-cache';

const dir = mkdtempSync(join(tmpdir(), 'xyp-llm-accounting-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The fault server's usage for one user message: chars/4 of the prompt and of the reply, rounded up. */
const usageOf = (prompt: string) => ({ promptTokens: Math.ceil(prompt.length / 4), completionTokens: Math.ceil(fakeReply(prompt).length / 4) });

async function values(registry: Registry, name: string): Promise<{ labels: Record<string, string | number>; value: number; metricName?: string }[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values as { labels: Record<string, string | number>; value: number; metricName?: string }[];
}

describe('LlmGateway accounting', () => {
  it('counts requests, retries, tokens, cost, latency and cache hits per model, in stats() and in xyp_llm_* metrics', async () => {
    const prompts = ['first question', 'second, longer question', 'third question, retried once'];
    const server = await startFakeOpenAi({
      faults: (i, body) => (body.messages[0].content === 'bad' ? { kind: 'status', status: 400 } : i === 2 ? { kind: 'status', status: 503 } : undefined),
    });
    const registry = new Registry();
    const gateway = new LlmGateway({
      models: [{ name: 'judge', baseUrl: server.baseUrl, model: 'tiny-judge', pricePer1M: { input: 2, output: 8 } }],
      metricsRegistry: registry,
      cache: new DirectoryResponseCache(dir),
      backoffScale: 0.01,
    });
    try {
      for (const p of prompts) await gateway.chat('judge', { messages: [{ role: 'user', content: p }] });
      await expect(gateway.chat('judge', { messages: [{ role: 'user', content: 'bad' }] })).rejects.toThrow('status 400');
      const hit = await gateway.chat('judge', { messages: [{ role: 'user', content: prompts[0] }] });
      expect(hit.cached).toBe(true);

      const promptTokens = prompts.reduce((s, p) => s + usageOf(p).promptTokens, 0);
      const completionTokens = prompts.reduce((s, p) => s + usageOf(p).completionTokens, 0);
      const cost = (promptTokens * 2 + completionTokens * 8) / 1e6;
      const stats = gateway.stats().judge;
      expect(stats).toMatchObject({ answered: 3, cacheHits: 1, failed: 1, httpRequests: 5, retries: 1, cooldowns: 0, promptTokens, completionTokens });
      expect(stats.costUsd).toBeCloseTo(cost, 12);
      expect(stats.latencyMs.mean).toBeCloseTo(stats.latencyMs.total / 3, 9);
      expect(stats.latencyMs.max).toBeGreaterThan(0);
      expect(server.requests).toBe(5);

      const requests = await values(registry, 'xyp_llm_requests_total');
      const byOutcome = Object.fromEntries(requests.map((v) => [v.labels.outcome, v.value]));
      expect(byOutcome).toEqual({ ok: 3, failed: 1, cached: 1 });
      expect(requests.every((v) => v.labels.model === 'judge')).toBe(true);
      expect(await values(registry, 'xyp_llm_retries_total')).toEqual([{ labels: { model: 'judge', reason: 'http_503' }, value: 1 }]);
      const tokens = Object.fromEntries((await values(registry, 'xyp_llm_tokens_total')).map((v) => [v.labels.kind, v.value]));
      expect(tokens).toEqual({ prompt: promptTokens, completion: completionTokens });
      expect((await values(registry, 'xyp_llm_cost_usd_total'))[0].value).toBeCloseTo(cost, 12);
      expect(await values(registry, 'xyp_llm_cache_hits_total')).toEqual([{ labels: { model: 'judge' }, value: 1 }]);
      const count = (await values(registry, 'xyp_llm_request_duration_seconds')).find((v) => v.metricName === 'xyp_llm_request_duration_seconds_count');
      expect(count?.value).toBe(3);
      expect(await registry.metrics()).toContain('xyp_llm_requests_total{model="judge",outcome="ok"} 3');

      // A second gateway on the same registry shares the metrics rather than failing to register them.
      const second = new LlmGateway({ models: [{ name: 'judge', baseUrl: server.baseUrl, model: 'tiny-judge' }], metricsRegistry: registry });
      await second.chat('judge', { messages: [{ role: 'user', content: 'one more' }] });
      second.close();
      expect(Object.fromEntries((await values(registry, 'xyp_llm_requests_total')).map((v) => [v.labels.outcome, v.value])).ok).toBe(4);
    } finally {
      gateway.close();
      await server.close();
    }
  });
});
