/**
 * What the gateway spent, per model: `stats()` for a caller, and Prometheus metrics (all named
 * `xyp_llm_*`) on the registry it was given. Tokens, cost and latency are those of answers that came
 * over HTTP, booked to the model that answered (a fallback books its own); a cache hit costs nothing
 * and is booked to the model asked for.
 */
import { Counter, Histogram, Registry, type Metric } from 'prom-client';

export interface ModelStats {
  /** Calls answered over HTTP by this model. */
  answered: number;
  /** Calls answered from the response cache (the model asked for). */
  cacheHits: number;
  /** Calls asked of this model that failed. */
  failed: number;
  /** HTTP requests sent to this model's endpoint, retries included. */
  httpRequests: number;
  /** Failed HTTP requests that were retried. */
  retries: number;
  /** Times its endpoint was paused (cooldown). */
  cooldowns: number;
  promptTokens: number;
  completionTokens: number;
  /** USD, from the model's `pricePer1M`; 0 without prices. */
  costUsd: number;
  /** Whole calls answered over HTTP (waits and retries included). */
  latencyMs: { total: number; mean: number; max: number };
}

export type RequestOutcome = 'ok' | 'cached' | 'failed';

function emptyStats(): ModelStats {
  return { answered: 0, cacheHits: 0, failed: 0, httpRequests: 0, retries: 0, cooldowns: 0, promptTokens: 0, completionTokens: 0, costUsd: 0, latencyMs: { total: 0, mean: 0, max: 0 } };
}

/** A metric already on the registry (a second gateway on it) is reused rather than registered twice. */
function metric<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export class GatewayAccounting {
  private readonly perModel = new Map<string, ModelStats>();
  private readonly requests: Counter<'model' | 'outcome'>;
  private readonly retriesTotal: Counter<'model' | 'reason'>;
  private readonly tokens: Counter<'model' | 'kind'>;
  private readonly cost: Counter<'model'>;
  private readonly latency: Histogram<'model'>;
  private readonly cacheHitsTotal: Counter<'model'>;
  private readonly cooldownsTotal: Counter<'model'>;

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.requests = metric(registry, 'xyp_llm_requests_total', () => new Counter({ name: 'xyp_llm_requests_total', help: 'Gateway chat calls by model and outcome (ok: answered over HTTP, by the model that answered; cached; failed: by the model asked for)', labelNames: ['model', 'outcome'], registers }));
    this.retriesTotal = metric(registry, 'xyp_llm_retries_total', () => new Counter({ name: 'xyp_llm_retries_total', help: 'Failed HTTP requests the gateway retried, by model and reason (http_<status>, timeout, connection, malformed_body)', labelNames: ['model', 'reason'], registers }));
    this.tokens = metric(registry, 'xyp_llm_tokens_total', () => new Counter({ name: 'xyp_llm_tokens_total', help: 'Tokens of answers over HTTP, by model and kind (prompt, completion)', labelNames: ['model', 'kind'], registers }));
    this.cost = metric(registry, 'xyp_llm_cost_usd_total', () => new Counter({ name: 'xyp_llm_cost_usd_total', help: 'USD spent, from the model prices per 1M tokens', labelNames: ['model'], registers }));
    this.latency = metric(registry, 'xyp_llm_request_duration_seconds', () => new Histogram({ name: 'xyp_llm_request_duration_seconds', help: 'Whole chat calls answered over HTTP (waits and retries included), by the model that answered', labelNames: ['model'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers }));
    this.cacheHitsTotal = metric(registry, 'xyp_llm_cache_hits_total', () => new Counter({ name: 'xyp_llm_cache_hits_total', help: 'Chat calls answered from the response cache, by the model asked for', labelNames: ['model'], registers }));
    this.cooldownsTotal = metric(registry, 'xyp_llm_cooldowns_total', () => new Counter({ name: 'xyp_llm_cooldowns_total', help: 'Times an endpoint was paused for failing more than half its calls', labelNames: ['model'], registers }));
  }

  private of(model: string): ModelStats {
    let s = this.perModel.get(model);
    if (!s) this.perModel.set(model, (s = emptyStats()));
    return s;
  }

  httpRequest(model: string): void {
    this.of(model).httpRequests++;
  }

  retry(model: string, reason: string): void {
    this.of(model).retries++;
    this.retriesTotal.inc({ model, reason });
  }

  cooldown(model: string): void {
    this.of(model).cooldowns++;
    this.cooldownsTotal.inc({ model });
  }

  answered(model: string, usage: { promptTokens: number; completionTokens: number }, costUsd: number, latencyMs: number): void {
    const s = this.of(model);
    s.answered++;
    s.promptTokens += usage.promptTokens;
    s.completionTokens += usage.completionTokens;
    s.costUsd += costUsd;
    s.latencyMs.total += latencyMs;
    s.latencyMs.max = Math.max(s.latencyMs.max, latencyMs);
    s.latencyMs.mean = s.latencyMs.total / s.answered;
    this.requests.inc({ model, outcome: 'ok' });
    this.tokens.inc({ model, kind: 'prompt' }, usage.promptTokens);
    this.tokens.inc({ model, kind: 'completion' }, usage.completionTokens);
    if (costUsd > 0) this.cost.inc({ model }, costUsd);
    this.latency.observe({ model }, latencyMs / 1000);
  }

  cached(model: string): void {
    this.of(model).cacheHits++;
    this.requests.inc({ model, outcome: 'cached' });
    this.cacheHitsTotal.inc({ model });
  }

  failed(model: string): void {
    this.of(model).failed++;
    this.requests.inc({ model, outcome: 'failed' });
  }

  /** A copy, by model name. */
  snapshot(): Record<string, ModelStats> {
    return Object.fromEntries([...this.perModel].map(([name, s]) => [name, { ...s, latencyMs: { ...s.latencyMs } }]));
  }
}
